package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/convoy-gitops/convoy/internal/queue"
	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

var secret = []byte("webhook-s3cret-value")

const (
	pushSHA = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c" // after, in testdata/push.json
	headSHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821" // PR #42's head, in testdata/pull_request*.json
)

type hookEnv struct {
	h        *server.Webhook
	rollouts *queue.Queue
	plans    *queue.Queue
	logs     *testenv.LogBuffer
}

func newHook(t *testing.T, maxBody int64) *hookEnv {
	t.Helper()
	e := &hookEnv{rollouts: queue.New(), plans: queue.New(), logs: &testenv.LogBuffer{}}
	h, err := server.NewWebhook(server.WebhookOptions{
		Secret: secret, Repo: "acme/fleet-config", Branch: "main", MaxBody: maxBody,
		Rollouts: e.rollouts, Plans: e.plans,
		Log: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	return e
}

func sign256(body, key []byte) string { return server.Sign(body, key) }

func payload(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// request is a delivery as GitHub sends it; headers override the signed
// defaults, and an empty value removes the header.
func request(event, id string, body []byte, headers map[string]string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, server.WebhookPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", sign256(body, secret))
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return req
}

func (e *hookEnv) deliver(event, id string, body []byte, headers map[string]string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, request(event, id, body, headers))
	return rec
}

type replyBody struct {
	Status, Reason, Key, SHA string
	Coalesced                bool
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) replyBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var r replyBody
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("reply %q is not JSON: %v", rec.Body, err)
	}
	return r
}

func TestWebhookRefuses(t *testing.T) {
	push := payload(t, "push")
	sha1Mac := hmac.New(sha1.New, secret)
	sha1Mac.Write(push)
	sha1Sig := "sha1=" + hex.EncodeToString(sha1Mac.Sum(nil))
	for _, tc := range []struct {
		name    string
		method  string
		headers map[string]string
		want    int
		reason  string // part of the reply's reason
	}{
		{"bad signature", "", map[string]string{"X-Hub-Signature-256": sign256(push, []byte("wrong"))}, 401, "does not match"},
		{"signature of another body", "", map[string]string{"X-Hub-Signature-256": sign256([]byte("{}"), secret)}, 401, "does not match"},
		{"SHA-1 only", "", map[string]string{"X-Hub-Signature-256": "", "X-Hub-Signature": sha1Sig}, 401, "sha256"},
		{"SHA-1 value in the SHA-256 header", "", map[string]string{"X-Hub-Signature-256": sha1Sig}, 401, "does not match"},
		{"no signature", "", map[string]string{"X-Hub-Signature-256": ""}, 401, "missing X-Hub-Signature-256"},
		{"signature not hex", "", map[string]string{"X-Hub-Signature-256": "sha256=zz"}, 401, "does not match"},
		{"no delivery id", "", map[string]string{"X-GitHub-Delivery": ""}, 400, "X-GitHub-Delivery"},
		{"no event", "", map[string]string{"X-GitHub-Event": ""}, 400, "X-GitHub-Event"},
		{"GET", http.MethodGet, nil, 405, "POST only"},
		{"form encoded", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHook(t, 0)
			req := request("push", "d-1", push, tc.headers)
			if tc.method != "" {
				req.Method = tc.method
			}
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			got := decode(t, rec)
			if rec.Code != tc.want || got.Status != "error" || !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("got %d %s, want %d error naming %q", rec.Code, rec.Body, tc.want, tc.reason)
			}
			if n := e.rollouts.Len() + e.plans.Len(); n != 0 {
				t.Errorf("a refused delivery queued %d items", n)
			}
		})
	}
}

func TestWebhookReplay(t *testing.T) {
	e := newHook(t, 0)
	push := payload(t, "push")
	// A forged copy arriving first must not use up the ID GitHub will send.
	forged := map[string]string{"X-Hub-Signature-256": sign256(push, []byte("forged"))}
	for i, want := range []int{401, 202, 409, 401} {
		headers := map[string]string(nil)
		if i == 0 || i == 3 {
			headers = forged
		}
		if rec := e.deliver("push", "d-42", push, headers); rec.Code != want {
			t.Fatalf("delivery %d: %d %s, want %d", i, rec.Code, rec.Body, want)
		}
	}
	if rec := e.deliver("push", "d-43", push, nil); rec.Code != 202 {
		t.Errorf("a new delivery ID after a replay: %d %s, want 202", rec.Code, rec.Body)
	}
	it, err := e.rollouts.Get(context.Background())
	if err != nil || it.Events != 2 || it.Delivery != "d-43" {
		t.Errorf("rollout %+v (%v), want d-42 and d-43 folded into one item naming d-43", it, err)
	}
}

// A delivery refused before it was accepted (a body that does not parse)
// does not use up its ID: GitHub's redelivery, with the same ID, is taken.
func TestWebhookRedeliveryAfterBadBody(t *testing.T) {
	e := newHook(t, 0)
	if rec := e.deliver("push", "d-77", []byte(`{"ref": 42`), nil); rec.Code != 400 {
		t.Fatalf("bad body: %d %s, want 400", rec.Code, rec.Body)
	}
	if rec := e.deliver("push", "d-77", payload(t, "push"), nil); rec.Code != 202 {
		t.Fatalf("redelivery of d-77: %d %s, want 202", rec.Code, rec.Body)
	}
	if rec := e.deliver("push", "d-77", payload(t, "push"), nil); rec.Code != 409 {
		t.Errorf("a second copy of the accepted d-77: %d %s, want 409", rec.Code, rec.Body)
	}
}

// TestWebhookReplayConcurrent: of many copies of one delivery sent at once,
// exactly one is accepted.
func TestWebhookReplayConcurrent(t *testing.T) {
	e := newHook(t, 0)
	push := payload(t, "push")
	codes := make([]int, 16)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() { codes[i] = e.deliver("push", "same", push, nil).Code })
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if diff := cmp.Diff(map[int]int{202: 1, 409: len(codes) - 1}, count); diff != "" {
		t.Errorf("status codes (-want +got):\n%s", diff)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestWebhookOversize(t *testing.T) {
	const max = 1024
	body := bytes.Repeat([]byte("x"), 64*max)
	for _, tc := range []struct {
		name     string
		declared bool // Content-Length sent, or a chunked body of unknown length
		maxRead  int
	}{
		{"chunked", false, max + 1}, // http.MaxBytesReader reads one byte past the cap to know it is over
		{"declared length", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHook(t, max)
			r := &countingReader{r: bytes.NewReader(body)}
			req := request("push", "big", nil, map[string]string{"X-Hub-Signature-256": sign256(body, secret)})
			req.Body = io.NopCloser(r)
			req.ContentLength = -1
			if tc.declared {
				req.ContentLength = int64(len(body))
			}
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("got %d %s, want 413", rec.Code, rec.Body)
			}
			if r.n > tc.maxRead {
				t.Errorf("read %d bytes of a %d byte body, want at most %d", r.n, len(body), tc.maxRead)
			}
		})
	}
	t.Run("at the cap", func(t *testing.T) {
		e := newHook(t, max)
		padded := append(payload(t, "ping"), bytes.Repeat([]byte(" "), max)...)[:max]
		if rec := e.deliver("ping", "fits", padded, nil); rec.Code != 200 {
			t.Errorf("a %d byte body with a %d byte cap: %d %s, want 200", len(padded), max, rec.Code, rec.Body)
		}
	})
}

func TestWebhookEvents(t *testing.T) {
	push := payload(t, "push")
	pr := payload(t, "pull_request")
	review := payload(t, "pull_request_review")
	edit := func(body []byte, pairs ...string) []byte {
		for i := 0; i < len(pairs); i += 2 {
			if !bytes.Contains(body, []byte(pairs[i])) {
				t.Fatalf("%q is not in the payload", pairs[i])
			}
			body = bytes.ReplaceAll(body, []byte(pairs[i]), []byte(pairs[i+1]))
		}
		return body
	}
	zero := strings.Repeat("0", 40)
	rollout := &queue.Item{Kind: queue.KindPush, Ref: "refs/heads/main", SHA: pushSHA, Events: 1}
	plan := &queue.Item{Kind: queue.KindPlan, PR: 42, SHA: headSHA, Events: 1}
	for _, tc := range []struct {
		name, event string
		body        []byte
		want        int
		status      string
		rollout     *queue.Item
		plan        *queue.Item
	}{
		{"ping", "ping", payload(t, "ping"), 200, "pong", nil, nil},
		{"push to main", "push", push, 202, "queued", rollout, nil},
		{"push to another branch", "push", edit(push, `"refs/heads/main"`, `"refs/heads/feature"`), 202, "ignored", nil, nil},
		{"push of a tag", "push", edit(push, `"refs/heads/main"`, `"refs/tags/v1.0.0"`), 202, "ignored", nil, nil},
		{"push to a branch named like main", "push", edit(push, `"refs/heads/main"`, `"refs/heads/main2"`), 202, "ignored", nil, nil},
		{"push to another repo", "push", edit(push, `"acme/fleet-config"`, `"acme/other"`), 202, "ignored", nil, nil},
		{"push, repo name in another case", "push", edit(push, `"acme/fleet-config"`, `"Acme/Fleet-Config"`), 202, "queued", rollout, nil},
		{"branch deleted", "push", edit(push, `"deleted": false`, `"deleted": true`, `"after": "`+pushSHA, `"after": "`+zero), 202, "ignored", nil, nil},
		{"push after all zeros", "push", edit(push, `"after": "`+pushSHA, `"after": "`+zero), 202, "ignored", nil, nil},
		{"push after not a SHA", "push", edit(push, `"after": "`+pushSHA, `"after": "HEAD`), 400, "error", nil, nil},
		{"pull request opened", "pull_request", pr, 202, "queued", nil, plan},
		{"pull request synchronize", "pull_request", edit(pr, `"action": "opened"`, `"action": "synchronize"`), 202, "queued", nil, plan},
		{"pull request labeled", "pull_request", edit(pr, `"action": "opened"`, `"action": "labeled"`), 202, "queued", nil, plan},
		{"pull request closed", "pull_request", edit(pr, `"action": "opened"`, `"action": "closed"`), 202, "ignored", nil, nil},
		{"pull request into another branch", "pull_request", edit(pr, `"ref": "main"`, `"ref": "release-1"`), 202, "ignored", nil, nil},
		{"pull request of another repo", "pull_request", edit(pr, `"acme/fleet-config"`, `"acme/other"`), 202, "ignored", nil, nil},
		{"pull request without head sha", "pull_request", edit(pr, `"sha": "`+headSHA+`"`, `"sha": ""`), 400, "error", nil, nil},
		{"review submitted", "pull_request_review", review, 202, "queued", nil, plan},
		{"review dismissed", "pull_request_review", edit(review, `"action": "submitted"`, `"action": "dismissed"`), 202, "queued", nil, plan},
		{"review of another repo", "pull_request_review", edit(review, `"acme/fleet-config"`, `"acme/other"`), 202, "ignored", nil, nil},
		{"unknown event", "issues", []byte(`{"action":"opened"}`), 202, "ignored", nil, nil},
		{"unknown event, not JSON", "deployment_status", []byte(`<xml/>`), 202, "ignored", nil, nil},
		{"malformed push", "push", []byte(`{"ref": 7`), 400, "error", nil, nil},
		{"push with a wrongly typed field", "push", []byte(`{"ref": 7}`), 400, "error", nil, nil},
		{"malformed pull request", "pull_request", []byte(`[]`), 400, "error", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHook(t, 0)
			rec := e.deliver(tc.event, "d-"+tc.name, tc.body, nil)
			got := decode(t, rec)
			if rec.Code != tc.want || got.Status != tc.status {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body, tc.want, tc.status)
			}
			for _, q := range []struct {
				name  string
				queue *queue.Queue
				want  *queue.Item
			}{{"rollouts", e.rollouts, tc.rollout}, {"plans", e.plans, tc.plan}} {
				if q.want == nil {
					if n := q.queue.Len(); n != 0 {
						t.Errorf("%s: %d items queued, want none", q.name, n)
					}
					continue
				}
				if n := q.queue.Len(); n != 1 {
					t.Fatalf("%s: %d items queued, want 1", q.name, n)
				}
				it, err := q.queue.Get(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				want := *q.want
				want.Delivery = "d-" + tc.name
				if diff := cmp.Diff(want, it, cmpopts.IgnoreFields(queue.Item{}, "First")); diff != "" {
					t.Errorf("%s item (-want +got):\n%s", q.name, diff)
				}
				if it.First.IsZero() {
					t.Errorf("%s item has no first-enqueue time", q.name)
				}
				if got.Key != it.Key() || got.SHA != it.SHA {
					t.Errorf("reply names %s@%s, want %s@%s", got.Key, got.SHA, it.Key(), it.SHA)
				}
			}
		})
	}
}

// TestWebhookBurst: ten rapid pushes to main become one rollout of the tenth
// commit, and reviews of a pull request one plan, on its own queue.
func TestWebhookBurst(t *testing.T) {
	e := newHook(t, 0)
	push := payload(t, "push")
	var last string
	for i := range 10 {
		last = fmt.Sprintf("%040x", i+1)
		body := bytes.ReplaceAll(push, []byte(pushSHA), []byte(last))
		rec := e.deliver("push", fmt.Sprintf("burst-%d", i), body, nil)
		if got := decode(t, rec); rec.Code != 202 || got.Coalesced != (i > 0) {
			t.Fatalf("push %d: %d %s, want 202 coalesced=%v", i, rec.Code, rec.Body, i > 0)
		}
	}
	for i := range 3 {
		if rec := e.deliver("pull_request_review", fmt.Sprintf("review-%d", i), payload(t, "pull_request_review"), nil); rec.Code != 202 {
			t.Fatalf("review %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if n, m := e.rollouts.Len(), e.plans.Len(); n != 1 || m != 1 {
		t.Fatalf("%d rollouts and %d plans queued, want 1 and 1", n, m)
	}
	it, _ := e.rollouts.Get(context.Background())
	want := queue.Item{Kind: queue.KindPush, Ref: "refs/heads/main", SHA: last, Delivery: "burst-9", Events: 10}
	if diff := cmp.Diff(want, it, cmpopts.IgnoreFields(queue.Item{}, "First")); diff != "" {
		t.Errorf("rollout (-want +got):\n%s", diff)
	}
	if p, _ := e.plans.Get(context.Background()); p.Key() != "pr:42" || p.Events != 3 {
		t.Errorf("plan %+v, want pr:42 after 3 events", p)
	}
}

// TestWebhookConcurrentPushes: pushes handled at once still fold into one
// rollout that counts them all.
func TestWebhookConcurrentPushes(t *testing.T) {
	e := newHook(t, 0)
	push := payload(t, "push")
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			body := bytes.ReplaceAll(push, []byte(pushSHA), []byte(fmt.Sprintf("%040x", i+1)))
			if rec := e.deliver("push", fmt.Sprintf("c-%d", i), body, nil); rec.Code != 202 {
				t.Errorf("push %d: %d %s", i, rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	if n := e.rollouts.Len(); n != 1 {
		t.Fatalf("%d rollouts queued, want 1", n)
	}
	if it, _ := e.rollouts.Get(context.Background()); it.Events != 10 {
		t.Errorf("rollout counts %d events, want 10", it.Events)
	}
}

// TestWebhookLogs: every outcome is logged with its delivery and event, and
// neither the secret nor any signature reaches the log.
func TestWebhookLogs(t *testing.T) {
	e := newHook(t, 4096)
	push := payload(t, "push")
	oversize := bytes.Repeat([]byte(" "), 8192)
	sigs := []string{sign256(push, secret), sign256(oversize, secret)}
	for _, d := range []struct {
		id      string
		body    []byte
		headers map[string]string
	}{
		{"log-ok", push, nil},
		{"log-ok", push, nil}, // replay
		{"log-bad", push, map[string]string{"X-Hub-Signature-256": sign256(push, []byte("x"))}},
		{"log-sha1", push, map[string]string{"X-Hub-Signature-256": "", "X-Hub-Signature": "sha1=" + hex.EncodeToString(secret)}},
		{"log-big", oversize, nil},
		{"log-malformed", []byte(`{"ref": 7}`), nil},
	} {
		if s := d.headers["X-Hub-Signature-256"]; s != "" {
			sigs = append(sigs, s)
		}
		e.h.ServeHTTP(httptest.NewRecorder(), request("push", d.id, d.body, d.headers))
	}
	logs := e.logs.String()
	for _, want := range []string{
		`"delivery":"log-ok","event":"push","action":"","code":202,"status":"queued"`,
		`"delivery":"log-ok","event":"push","code":409`,
		`"delivery":"log-bad","event":"push","code":401`,
		`"delivery":"log-sha1","event":"push","code":401`,
		`"delivery":"log-big","event":"push","code":413`,
		`"delivery":"log-malformed","event":"push","code":400`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	for _, leak := range append(sigs, string(secret), hex.EncodeToString(secret), "sha256=", "sha1=") {
		if strings.Contains(logs, leak) {
			t.Errorf("logs contain %q:\n%s", leak, logs)
		}
	}
}

func TestNewWebhookOptions(t *testing.T) {
	q := queue.New()
	for _, tc := range []struct {
		name string
		opts server.WebhookOptions
		want string // part of the error; "" for none
	}{
		{"complete", server.WebhookOptions{Secret: secret, Repo: "acme/fleet-config", Rollouts: q, Plans: q}, ""},
		{"empty secret", server.WebhookOptions{Secret: []byte{}, Repo: "acme/fleet-config", Rollouts: q, Plans: q}, "secret is empty"},
		{"no secret", server.WebhookOptions{Repo: "acme/fleet-config", Rollouts: q, Plans: q}, "secret is empty"},
		{"no repo", server.WebhookOptions{Secret: secret, Rollouts: q, Plans: q}, `repo "": want owner/repo`},
		{"repo without owner", server.WebhookOptions{Secret: secret, Repo: "fleet-config", Rollouts: q, Plans: q}, "want owner/repo"},
		{"no queues", server.WebhookOptions{Secret: secret, Repo: "acme/fleet-config"}, "Rollouts and Plans are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := server.NewWebhook(tc.opts)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.want == "" && h == nil:
				t.Error("no webhook and no error")
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), string(secret)):
				t.Errorf("err %v contains the secret", err)
			}
		})
	}
}

// TestWebhookOverHTTP sends deliveries through a real HTTP server, as GitHub
// does.
func TestWebhookOverHTTP(t *testing.T) {
	e := newHook(t, 4096)
	mux := http.NewServeMux()
	mux.Handle(server.WebhookPath, e.h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	send := func(id string, body []byte) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL+server.WebhookPath, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", id)
		req.Header.Set("X-Hub-Signature-256", sign256(body, secret))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if code := send("http-1", payload(t, "push")); code != 202 {
		t.Errorf("push: %d, want 202", code)
	}
	if code := send("http-2", bytes.Repeat([]byte(" "), 8192)); code != 413 {
		t.Errorf("oversize: %d, want 413", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if it, err := e.rollouts.Get(ctx); err != nil || it.SHA != pushSHA {
		t.Errorf("rollout %+v (%v), want %s", it, err, pushSHA)
	}
}
