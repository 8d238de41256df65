package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/convoy-gitops/convoy/internal/metrics"
	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// Load test settings. CONVOY_LOAD_SECONDS sets the duration: 3 s in
// `make test`, 30 s for the full run.
const (
	loadRate        = 100 // deliveries per second, replays included
	loadDefaultSecs = 3
	loadMaxSecs     = 300
	loadInFlight    = 64 // concurrent deliveries at most; the sender waits beyond
	loadCommitEvery = 500 * time.Millisecond
	// loadHeapBound bounds the growth of the heap in use over a run, after
	// a GC: the replay cache keeps every delivery ID (about 100 bytes each)
	// and nothing else may grow with the number of deliveries.
	loadHeapBound = 64 << 20
)

// delivery is one webhook delivery: what was sent, what came back.
type delivery struct {
	kind    string // push, pull_request or replay
	event   string // X-GitHub-Event
	id      string // X-GitHub-Delivery
	body    []byte
	code    int
	reply   map[string]any
	err     error
	latency time.Duration
}

// TestWebhookLoad sends 100 signed deliveries a second (60% pushes of the
// newest commit, 30% pull_request events, 10% replays of earlier
// deliveries) to an agent's real HTTP server on loopback for
// CONVOY_LOAD_SECONDS, while commits land every half second. Every push
// must be queued or folded into the pending push, every pull_request
// event queued, every replay refused with 409; the agent's
// convoy_webhook_deliveries_total must count exactly that; no revision may
// be rolled out twice; the last rollout must be of the newest commit; and
// the heap in use must not grow by more than loadHeapBound.
func TestWebhookLoad(t *testing.T) {
	seconds := loadDefaultSecs
	if s := os.Getenv("CONVOY_LOAD_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > loadMaxSecs {
			t.Fatalf("CONVOY_LOAD_SECONDS=%q: want 1 to %d", s, loadMaxSecs)
		}
		seconds = n
	}
	h := newHarness(t, fleetFiles(t, "", ""))
	rev1 := h.repo.Head(t)
	cfg := h.config(nil) // listens on 127.0.0.1:0
	// Only errors reach the test log: a line per delivery would be the
	// largest thing in the heap.
	log := slog.New(slog.NewTextHandler(testWriter{t, "load"}, &slog.HandlerOptions{Level: slog.LevelError}))
	a, err := New(Options{Config: cfg, Log: log, Metrics: metrics.New(), Identity: "load"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testenv.WaitFor(t, 10*time.Second, "the agent's HTTP server", func() bool { return a.Addr() != "" })
	addr := a.Addr()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("agent did not stop within 60s")
		}
	})
	h.waitRevision(rev1, 60*time.Second, "staging", "prod", "dr")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: loadInFlight, MaxIdleConnsPerHost: loadInFlight, IdleConnTimeout: 30 * time.Second}}
	defer client.CloseIdleConnections()
	heapBefore := heapInUse()

	// Commits land while the deliveries go out; pushes name the newest.
	var head atomic.Value
	head.Store(rev1)
	loadCtx, stopLoad := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second)
	defer stopLoad()
	commits := []string{rev1}
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		for v := 2; loadCtx.Err() == nil; v++ {
			sha := h.repo.Commit(t, fmt.Sprintf("version %d%s", v, approved), setVersion(t, v))
			commits = append(commits, sha)
			head.Store(sha)
			select {
			case <-loadCtx.Done():
			case <-time.After(loadCommitEvery):
			}
		}
	}()

	var (
		mu      sync.Mutex
		sent    []*delivery
		settled []*delivery // answered originals, for replays
		wg      sync.WaitGroup
		slots   = make(chan struct{}, loadInFlight)
	)
	deliver := func(d *delivery) {
		defer wg.Done()
		defer func() { <-slots }()
		began := time.Now()
		d.code, d.reply, d.err = postDelivery(client, addr, d)
		d.latency = time.Since(began)
		if d.kind != "replay" && d.err == nil {
			mu.Lock()
			settled = append(settled, d)
			mu.Unlock()
		}
	}
	// Delivery i is due at began + i/loadRate: a late one goes out at once,
	// so that the rate is kept on average when the machine stalls.
	began := time.Now()
	for i := 0; ; i++ {
		due := began.Add(time.Duration(i) * time.Second / loadRate)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-loadCtx.Done():
			case <-time.After(wait):
			}
		}
		if loadCtx.Err() != nil {
			break
		}
		d := nextDelivery(i, head.Load().(string), func() *delivery {
			mu.Lock()
			defer mu.Unlock()
			if len(settled) == 0 {
				return nil
			}
			return settled[len(settled)-1]
		})
		slots <- struct{}{} // waits when loadInFlight deliveries are unanswered
		mu.Lock()
		sent = append(sent, d)
		mu.Unlock()
		wg.Add(1)
		go deliver(d)
	}
	wg.Wait()
	elapsed := time.Since(began)
	<-committed
	// The newest commit's own push, after the last commit: the rollout
	// that must follow is of this SHA.
	final := commits[len(commits)-1]
	last := &delivery{kind: "push", event: "push", id: "final", body: pushPayload(final)}
	wg.Add(1)
	slots <- struct{}{}
	deliver(last)
	sent = append(sent, last)

	// Every answer is what its kind must get.
	counts := map[string]int{}
	var latencies []time.Duration
	folded := 0
	for _, d := range sent {
		if d.err != nil {
			t.Errorf("delivery %s (%s): %v", d.id, d.kind, d.err)
			continue
		}
		latencies = append(latencies, d.latency)
		counts[d.kind]++
		switch d.kind {
		case "replay":
			if d.code != http.StatusConflict {
				t.Errorf("replay of %s: %d %v, want 409", d.id, d.code, d.reply)
			}
		default:
			if d.code != http.StatusAccepted || d.reply["status"] != "queued" {
				t.Errorf("%s delivery %s: %d %v, want 202 queued", d.kind, d.id, d.code, d.reply)
			}
			if d.reply["coalesced"] == true {
				folded++
			}
		}
	}
	h.waitRevision(final, 90*time.Second, "staging", "prod", "dr")
	// The rollout enters the history when it ends, a moment after the last
	// cluster's record is written.
	waitRolloutDone(t, a, final)

	// The agent counted every delivery once, by event and answer.
	got := scrapeDeliveries(t, addr)
	want := map[string]int{
		"push 202": counts["push"], "pull_request 202": counts["pull_request"], "push 409": 0, "pull_request 409": 0,
	}
	for _, d := range sent {
		if d.kind == "replay" {
			want[d.event+" 409"]++
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("convoy_webhook_deliveries_total{%s} = %d, want %d", k, got[k], n)
		}
	}
	if n := a.rollouts.Len(); n != 0 {
		t.Errorf("%d push items still queued after the rollout of the newest commit", n)
	}
	// No revision was rolled out twice, and the newest rollout is the newest commit.
	doneCount := map[string]int{}
	var history []string
	for _, r := range a.Status().Rollouts {
		history = append(history, source.Short(r.Revision)+" "+r.Result)
		if r.Result == "done" {
			if doneCount[r.Revision]++; doneCount[r.Revision] == 2 {
				t.Errorf("revision %s rolled out twice", source.Short(r.Revision))
			}
		}
	}
	if rs := a.Status().Rollouts; len(rs) == 0 || rs[0].Revision != final || rs[0].Result != "done" {
		t.Errorf("rollouts, newest first:\n%s\nwant the newest to be %s done", strings.Join(history, "\n"), source.Short(final))
	}

	heapAfter := heapInUse()
	growth := int64(heapAfter) - int64(heapBefore)
	if growth > loadHeapBound {
		t.Errorf("heap in use grew by %d MiB over the run (%d → %d bytes), over the %d MiB bound",
			growth>>20, heapBefore, heapAfter, loadHeapBound>>20)
	}
	if len(latencies) == 0 {
		t.Fatal("no delivery was answered")
	}
	slices.Sort(latencies)
	total := counts["push"] + counts["pull_request"] + counts["replay"]
	t.Logf("load: %d s, %d deliveries (%d push, %d pull_request, %d replay) in %.1fs = %.1f deliveries/s; %d pushes folded into the pending one",
		seconds, total, counts["push"], counts["pull_request"], counts["replay"], elapsed.Seconds(), float64(total)/elapsed.Seconds(), folded)
	t.Logf("load: handler latency (loopback round trip) p50 %s, p99 %s, max %s",
		percentile(latencies, 50), percentile(latencies, 99), latencies[len(latencies)-1])
	t.Logf("load: %d commits, rollouts newest first: %s", len(commits), strings.Join(history, ", "))
	t.Logf("load: heap in use %.1f MiB before, %.1f MiB after (growth %+.1f MiB, bound %d MiB); peak RSS (VmHWM) %s",
		float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20), float64(growth)/(1<<20), loadHeapBound>>20, peakRSS())
}

// nextDelivery is the i-th delivery: a replay of the latest answered
// delivery every tenth (a push before any is answered), else pull_request events three times in nine, else a push
// of head.
func nextDelivery(i int, head string, lastSettled func() *delivery) *delivery {
	id := fmt.Sprintf("load-%d-%s", i, randomHex(4))
	switch {
	case i%10 == 9:
		if orig := lastSettled(); orig != nil {
			return &delivery{kind: "replay", event: orig.event, id: orig.id, body: orig.body}
		}
	case i%10 >= 6:
		pr := 1 + i%5
		return &delivery{kind: "pull_request", event: "pull_request", id: id, body: pullRequestPayload(pr, randomHex(20))}
	}
	return &delivery{kind: "push", event: "push", id: id, body: pushPayload(head)}
}

func pushPayload(sha string) []byte {
	return fmt.Appendf(nil, `{"ref":"refs/heads/main","before":"%s","after":"%s","repository":{"full_name":"acme/fleet","name":"fleet","owner":{"login":"acme"}},"commits":[]}`,
		strings.Repeat("0", 40), sha)
}

func pullRequestPayload(n int, sha string) []byte {
	return fmt.Appendf(nil, `{"action":"synchronize","number":%d,"pull_request":{"number":%d,"head":{"sha":"%s"},"base":{"ref":"main"}},"repository":{"full_name":"acme/fleet","name":"fleet","owner":{"login":"acme"}}}`,
		n, n, sha)
}

// postDelivery sends d, signed with the test secret, and returns the
// answer's status code and JSON reply.
func postDelivery(c *http.Client, addr string, d *delivery) (int, map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/github", bytes.NewReader(d.body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", d.event)
	req.Header.Set("X-GitHub-Delivery", d.id)
	req.Header.Set("X-Hub-Signature-256", server.Sign(d.body, []byte(testSecret)))
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var reply map[string]any
	if err := json.Unmarshal(body, &reply); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reply %q: %w", body, err)
	}
	return resp.StatusCode, reply, nil
}

// scrapeDeliveries reads convoy_webhook_deliveries_total from the agent's
// /metrics, as "event status" → count.
func scrapeDeliveries(t *testing.T, addr string) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range families["convoy_webhook_deliveries_total"].GetMetric() {
		var event, status string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "event":
				event = l.GetValue()
			case "status":
				status = l.GetValue()
			}
		}
		out[event+" "+status] += int(m.GetCounter().GetValue())
	}
	return out
}

// heapInUse is runtime.MemStats.HeapInuse after a GC.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// peakRSS is the process's peak resident set size, VmHWM of
// /proc/self/status ("unknown" where there is none).
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
