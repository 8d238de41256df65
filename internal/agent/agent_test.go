package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/metrics"
	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	testSecret = "webhook-secret-for-tests"
	approved   = testenv.Approved
)

// testFleet is the test's fleet on the shared planes (testenv.Fleet), named
// after the test, in Shanghai's time zone; window, when set, is added
// under spec.windows; bake is the canary's.
func testFleet(t *testing.T, window, bake string) testenv.Fleet {
	return testenv.Fleet{Name: testenv.Name(t), Timezone: "Asia/Shanghai", Windows: window, Bake: bake}
}

// fleetFiles is the repository of testFleet(t, window, bake) at version 1.
func fleetFiles(t *testing.T, window, bake string) map[string]string {
	return testFleet(t, window, bake).Files(1)
}

// setVersion is a commit's files that change the settings' version.
func setVersion(t *testing.T, v int) map[string]string { return testFleet(t, "", "").Settings(v) }

type harness struct {
	t        *testing.T
	clusters *testenv.Clusters
	git      *testenv.GitServer
	repo     *testenv.Repo
}

func newHarness(t *testing.T, files map[string]string) *harness {
	t.Helper()
	h := &harness{t: t}
	h.clusters = testenv.Shared(t)
	h.git = testenv.NewGitServer(t)
	h.repo = h.git.CreateRepo(t, "fleet", "")
	h.repo.Commit(t, "fleet"+approved, files)
	return h
}

// config is an agent config for the harness; edit adjusts it.
func (h *harness) config(edit func(*Config)) *Config {
	h.t.Helper()
	dir := h.t.TempDir()
	secret := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(secret, []byte(testSecret+"\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
	yaml := testenv.AgentConfig{RepoURL: h.repo.URL, Kubeconfig: h.clusters.KubeconfigFile,
		Extra: fmt.Sprintf("github: {repo: acme/fleet}\nwebhook: {secretFile: %q}\ndebounce: 2s\n", secret)}.YAML(h.t)
	cfg, err := ParseConfig("agent.yaml", []byte(yaml))
	if err != nil {
		h.t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	return cfg
}

// start runs an agent until the test ends (or stop is called).
func (h *harness) start(cfg *Config, clock Clock, identity string) (a *Agent, stop func()) {
	h.t.Helper()
	a, err := New(Options{Config: cfg, Log: testLogger(h.t, identity), Metrics: metrics.New(), Clock: clock, Identity: identity})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("agent %s: %v", identity, err)
				}
			case <-time.After(60 * time.Second):
				h.t.Errorf("agent %s did not stop within 60s", identity)
			}
		})
	}
	h.t.Cleanup(stop)
	return a, stop
}

func testLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// record returns a cluster's record, nil before the first apply.
func (h *harness) record(cluster string) *apply.Record {
	h.t.Helper()
	rec, err := apply.ReadRecord(context.Background(), h.clusters.Get(cluster).Client, testenv.Name(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	return rec
}

// waitRevision waits until every named cluster's record is at rev.
func (h *harness) waitRevision(rev string, timeout time.Duration, clusters ...string) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var behind []string
		for _, c := range clusters {
			if rec := h.record(c); rec == nil || rec.Revision != rev || rec.Status != apply.StatusApplied {
				got := "none"
				if rec != nil {
					got = source.Short(rec.Revision) + " " + rec.Status
				}
				behind = append(behind, c+" at "+got)
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("after %s, want every cluster at %s: %s", timeout, source.Short(rev), strings.Join(behind, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// settingsVersion reads the version the settings ConfigMap has on a cluster.
func (h *harness) settingsVersion(cluster string) string {
	h.t.Helper()
	var cm corev1.ConfigMap
	if err := h.clusters.Get(cluster).Client.Get(context.Background(), client.ObjectKey{Namespace: testenv.Name(h.t), Name: "settings"}, &cm); err != nil {
		return "missing"
	}
	return cm.Data["version"]
}

// push delivers a signed GitHub push event for sha to the agent's webhook.
func push(t *testing.T, a *Agent, sha string, delivery int) {
	t.Helper()
	body := fmt.Sprintf(`{"ref":"refs/heads/main","before":"%s","after":"%s","repository":{"full_name":"acme/fleet","name":"fleet","owner":{"login":"acme"}},"commits":[]}`,
		strings.Repeat("0", 40), sha)
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("delivery-%d", delivery))
	req.Header.Set("X-Hub-Signature-256", server.Sign([]byte(body), []byte(testSecret)))
	rec := httptest.NewRecorder()
	a.Webhook().ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted && rec.Code != http.StatusOK {
		t.Fatalf("push delivery %d: %d %s", delivery, rec.Code, rec.Body.String())
	}
}

// TestAgentRollsOutPushes: the first revision rolls out across every wave
// without a push (the agent fetches at start); then ten pushes within a
// second become one rollout, of the newest commit.
func TestAgentRollsOutPushes(t *testing.T) {
	h := newHarness(t, fleetFiles(t, "", ""))
	rev1 := h.repo.Head(t)
	a, _ := h.start(h.config(nil), nil, "agent-1")
	h.waitRevision(rev1, 60*time.Second, "staging", "prod", "dr")

	var last string
	for i := 2; i <= 11; i++ {
		last = h.repo.Commit(t, fmt.Sprintf("version %d%s", i, approved), setVersion(t, i))
		push(t, a, last, i)
	}
	h.waitRevision(last, 60*time.Second, "staging", "prod", "dr")
	for _, c := range []string{"staging", "prod", "dr"} {
		if v := h.settingsVersion(c); v != "11" {
			t.Errorf("cluster %s settings version = %s, want 11", c, v)
		}
	}
	waitRolloutDone(t, a, last)
	var revisions []string
	for _, r := range a.Status().Rollouts {
		revisions = append(revisions, source.Short(r.Revision)+" "+r.Result)
	}
	want := []string{source.Short(last) + " done", source.Short(rev1) + " done"}
	if strings.Join(revisions, "\n") != strings.Join(want, "\n") {
		t.Errorf("rollouts, newest first:\n%s\nwant one rollout for the ten pushes:\n%s", strings.Join(revisions, "\n"), strings.Join(want, "\n"))
	}
}

// fakeClock is a clock the test moves; After fires when the clock passes
// its deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	at := c.now.Add(d)
	if !at.After(c.now) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at, ch})
	return ch
}

// Set moves the clock to t and fires every waiter due by then.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.c <- t
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

// TestAgentHoldReleasesItself: a deny window on production holds the
// primary wave after the canary; status says until when; when the clock
// passes the window's end the agent re-evaluates by itself and completes
// the rollout, with no push and no poll.
func TestAgentHoldReleasesItself(t *testing.T) {
	freeze := `  windows:
  - {name: freeze, kind: deny, schedule: "0 10 * * *", duration: 2h, environments: [production]}
`
	h := newHarness(t, fleetFiles(t, freeze, ""))
	rev := h.repo.Head(t)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(time.Date(2026, 11, 25, 10, 30, 0, 0, shanghai))
	a, _ := h.start(h.config(nil), clock, "agent-1")
	h.waitRevision(rev, 60*time.Second, "staging")

	until := time.Date(2026, 11, 25, 12, 0, 0, 0, shanghai)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := a.Status()
		if len(st.Holds) > 0 && len(st.Rollouts) > 0 && st.Rollouts[0].Result == "held" {
			var held []string
			for _, h := range st.Holds {
				if !h.Until.Equal(until) || !strings.Contains(h.Reason, "window freeze") {
					t.Errorf("hold = %+v, want held by window freeze until %s", h, until)
				}
				held = append(held, h.Cluster)
			}
			if strings.Join(held, ",") != "prod,dr" {
				t.Errorf("held clusters = %v, want prod,dr in wave order", held)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no hold in status after 30s: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range []string{"prod", "dr"} {
		if rec := h.record(c); rec != nil {
			t.Fatalf("cluster %s was applied during the freeze: %+v", c, rec)
		}
	}

	clock.Set(until.Add(time.Second))
	h.waitRevision(rev, 60*time.Second, "staging", "prod", "dr")
	waitRolloutDone(t, a, rev)
	st := a.Status()
	if len(st.Holds) != 0 || st.Rollouts[0].Result != "done" {
		t.Errorf("after the window: holds %+v, last rollout %+v; want no hold, done", st.Holds, st.Rollouts[0])
	}
}

// TestAgentSupersedesAfterTheCurrentWave: a commit that lands while the
// canary bakes supersedes the rest of the rollout: the canary wave stays
// done, later waves go straight from the old revision to the newest.
func TestAgentSupersedesAfterTheCurrentWave(t *testing.T) {
	h := newHarness(t, fleetFiles(t, "", "4s"))
	rev1 := h.repo.Head(t)
	a, _ := h.start(h.config(nil), nil, "agent-1")
	h.waitRevision(rev1, 60*time.Second, "staging", "prod", "dr")

	rev2 := h.repo.Commit(t, "version 2"+approved, setVersion(t, 2))
	push(t, a, rev2, 2)
	h.waitRevision(rev2, 60*time.Second, "staging")
	rev3 := h.repo.Commit(t, "version 3"+approved, setVersion(t, 3)) // during the bake, no push
	h.waitRevision(rev3, 90*time.Second, "staging", "prod", "dr")

	for _, c := range []string{"prod", "dr"} {
		if rec := h.record(c); rec.PreviousRevision != rev1 {
			t.Errorf("cluster %s went from %s to %s, want from %s: the superseded revision reached it", c, source.Short(rec.PreviousRevision), source.Short(rec.Revision), source.Short(rev1))
		}
	}
	waitRolloutDone(t, a, rev3)
	var got []string
	want := []string{source.Short(rev3) + " done", source.Short(rev2) + " superseded", source.Short(rev1) + " done"}
	for _, r := range a.Status().Rollouts {
		got = append(got, source.Short(r.Revision)+" "+r.Result)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rollouts, newest first:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestAgentLeaderElection: of two agents with leader election, only the
// leader rolls out; stopped mid-rollout (while the canary bakes), it
// releases the Lease, the standby takes over and completes the rollout
// without writing the canary again.
func TestAgentLeaderElection(t *testing.T) {
	h := newHarness(t, fleetFiles(t, "", "4s"))
	rev := h.repo.Head(t)
	elect := func(c *Config) {
		c.LeaderElection = LeaderElectionConfig{Enabled: true, Namespace: "default", LeaseName: "convoy-" + testenv.Name(t),
			Kubeconfig: h.clusters.KubeconfigFile, Context: "staging",
			LeaseDuration: Duration{Duration: 3 * time.Second}, RenewDeadline: Duration{Duration: 2 * time.Second}, RetryPeriod: Duration{Duration: 500 * time.Millisecond}}
	}
	staging := h.clusters.Get("staging")
	cs := kubernetes.NewForConfigOrDie(staging.Config)
	ctx := context.Background()

	a, stopA := h.start(h.config(elect), nil, "agent-a")
	testenv.WaitFor(t, 30*time.Second, "agent-a leads", func() bool {
		id, _ := LeaseHolder(ctx, cs, "default", "convoy-"+testenv.Name(t))
		return id == "agent-a"
	})
	b, _ := h.start(h.config(elect), nil, "agent-b")
	h.waitRevision(rev, 60*time.Second, "staging") // the canary is baking
	if role := b.Status().Role; role != "standby" {
		t.Errorf("agent-b role = %s while agent-a leads, want standby", role)
	}
	if b.Ready() != nil {
		t.Errorf("a standby is ready (it serves health and metrics): %v", b.Ready())
	}
	before, err := staging.RequestCounts(ctx, map[string]string{"resource": "configmaps", "dry_run": ""})
	if err != nil {
		t.Fatal(err)
	}
	stopA()
	if rec := h.record("prod"); rec != nil {
		t.Fatalf("agent-a applied prod after it was stopped during the canary's bake: %+v", rec)
	}
	h.waitRevision(rev, 60*time.Second, "staging", "prod", "dr")
	if id, _ := LeaseHolder(ctx, cs, "default", "convoy-"+testenv.Name(t)); id != "agent-b" {
		t.Errorf("lease holder = %q, want agent-b", id)
	}
	after, err := staging.RequestCounts(ctx, map[string]string{"resource": "configmaps", "dry_run": ""})
	if err != nil {
		t.Fatal(err)
	}
	if n := after.Sub(before).Mutating(); n != 0 {
		t.Errorf("staging ConfigMaps written %d times after the takeover, want 0 (already done by agent-a)", n)
	}
	if role := b.Status().Role; role != "leader" {
		t.Errorf("agent-b role = %s, want leader", role)
	}
	_ = a
}

// waitRolloutDone waits until the agent's newest rollout is of rev and
// done: the clusters' records are written before it ends.
func waitRolloutDone(t *testing.T, a *Agent, rev string) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "the rollout of "+source.Short(rev)+" to be done", func() bool {
		rs := a.Status().Rollouts
		return len(rs) > 0 && rs[0].Revision == rev && rs[0].Result == "done"
	})
}

// TestAgentKilledMidRolloutResumes: `convoy run` killed with SIGKILL while
// the canary bakes; a new agent process completes the rollout from the
// in-cluster records without writing the canary again. Its logs (JSON)
// never carry the git token or the webhook secret.
func TestAgentKilledMidRolloutResumes(t *testing.T) {
	h := newHarness(t, fleetFiles(t, "", "5s"))
	const gitToken = "git-token-never-logged"
	h.git.RequireBasicAuth("convoy", gitToken)
	rev := h.repo.Head(t)

	bin := testenv.Convoy(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	userFile, passFile := write("user", "convoy\n"), write("pass", gitToken+"\n")
	secretFile := write("secret", testSecret+"\n")
	config := testenv.AgentConfig{RepoURL: h.repo.URL, Kubeconfig: h.clusters.KubeconfigFile,
		Repo:  fmt.Sprintf("auth: {usernameFile: %q, passwordFile: %q}", userFile, passFile),
		Extra: fmt.Sprintf("github: {repo: acme/fleet}\nwebhook: {secretFile: %q}\n", secretFile)}.File(t)

	var logs bytes.Buffer
	run := func(killOn string) {
		cmd := exec.Command(bin, "run", "--config", config)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		lines := bufio.NewScanner(stderr)
		lines.Buffer(make([]byte, 1<<20), 1<<20)
		for lines.Scan() {
			line := lines.Text()
			logs.WriteString(line + "\n")
			if !json.Valid([]byte(line)) {
				t.Errorf("log line is not JSON: %s", line)
			}
			if strings.Contains(line, killOn) {
				if strings.HasPrefix(killOn, `"msg":"rollout bake"`) {
					_ = cmd.Process.Signal(syscall.SIGKILL)
				}
				return
			}
		}
		t.Fatalf("agent exited before logging %s:\n%s", killOn, logs.String())
	}
	run(`"msg":"rollout bake"`)
	if rec := h.record("prod"); rec != nil {
		t.Fatalf("prod applied before the kill: %+v", rec)
	}
	h.waitRevision(rev, 5*time.Second, "staging")

	staging := h.clusters.Get("staging")
	ctx := context.Background()
	before, err := staging.RequestCounts(ctx, map[string]string{"resource": "configmaps", "dry_run": ""})
	if err != nil {
		t.Fatal(err)
	}
	run(`"result":"done"`)
	h.waitRevision(rev, 5*time.Second, "staging", "prod", "dr")
	after, err := staging.RequestCounts(ctx, map[string]string{"resource": "configmaps", "dry_run": ""})
	if err != nil {
		t.Fatal(err)
	}
	if n := after.Sub(before).Mutating(); n != 0 {
		t.Errorf("the restarted agent wrote staging ConfigMaps %d times, want 0", n)
	}
	secrets := []string{gitToken, testSecret}
	kc, err := os.ReadFile(h.clusters.KubeconfigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(kc), "\n") {
		for _, key := range []string{"client-key-data:", "client-certificate-data:", "token:"} {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), key); ok && len(strings.TrimSpace(v)) > 16 {
				secrets = append(secrets, strings.TrimSpace(v)[:16])
			}
		}
	}
	if len(secrets) < 3 {
		t.Fatalf("found no kubeconfig credentials to look for in %s", h.clusters.KubeconfigFile)
	}
	for _, secret := range secrets {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the agent's logs contain a secret %q", secret)
		}
	}
}

// deliver sends a signed GitHub delivery of event with body to the agent.
func deliver(t *testing.T, a *Agent, event, body string, delivery int) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", strings.NewReader(body))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("delivery-%d", delivery))
	req.Header.Set("X-Hub-Signature-256", server.Sign([]byte(body), []byte(testSecret)))
	rec := httptest.NewRecorder()
	a.Webhook().ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("%s delivery %d: %d %s", event, delivery, rec.Code, rec.Body.String())
	}
}

// TestAgentPlansPullRequests: a pull_request webhook makes the agent plan
// the pull request's head (refs/pull/N/head) with its reviews and report a
// status and one comment; a review requesting changes re-plans and edits
// that comment.
func TestAgentPlansPullRequests(t *testing.T) {
	files := fleetFiles(t, "", "")
	files["fleet.yaml"] = strings.Replace(files["fleet.yaml"], "    source: trailers\n", "    source: github\n    github: {owner: acme, repo: fleet}\n", 1)
	h := newHarness(t, files)
	gh := testenv.NewFakeGitHub(t)
	gh.SetRepo("acme", "fleet")
	gh.RequireToken("gh-token")
	gh.AddCollaborators("write", "alice", "bob", "carol")
	t.Setenv("GITHUB_TOKEN", "gh-token")

	// The pull request's head, served as refs/pull/7/head as GitHub does.
	base := h.repo.Head(t)
	h.repo.Git(t, "checkout", "--quiet", "-b", "feature")
	if err := os.WriteFile(filepath.Join(h.repo.WorkDir, "base/settings.yaml"), []byte(setVersion(t, 2)["base/settings.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	h.repo.Git(t, "commit", "--quiet", "-am", "version 2")
	head := strings.TrimSpace(h.repo.Git(t, "rev-parse", "HEAD"))
	h.repo.Git(t, "push", "--quiet", "origin", "HEAD:refs/pull/7/head")
	h.repo.Git(t, "checkout", "--quiet", "main")

	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	gh.AddPullRequest(testenv.PR{Number: 7, Title: "Version 2", Author: "alice", Labels: []string{"change/standard"}, HeadSHA: head,
		BaseSHA: base, Body: "## Rollback\nRevert.\n"})
	gh.AddReview(7, testenv.Review{User: "bob", State: "APPROVED", SubmittedAt: at})
	gh.AddCommit(head, "alice", "version 2", true)

	a, _ := h.start(h.config(func(c *Config) { c.GitHub.API = gh.URL() }), nil, "agent-1")
	pr := func(action string) string {
		return fmt.Sprintf(`{"action":%q,"number":7,"pull_request":{"number":7,"head":{"sha":%q,"ref":"feature"},"base":{"ref":"main"}},"repository":{"full_name":"acme/fleet","name":"fleet","owner":{"login":"acme"}}}`, action, head)
	}
	deliver(t, a, "pull_request", pr("opened"), 1)
	planStates := func() []string {
		var states []string
		for _, s := range gh.Statuses() {
			if s.Context == "convoy/plan" && s.SHA == head {
				states = append(states, s.State)
			}
		}
		return states
	}
	// The status is set before the comment is written: wait for both.
	testenv.WaitFor(t, 60*time.Second, "a plan status and comment on the pull request", func() bool {
		return len(planStates()) == 1 && len(gh.Comments(7)) == 1
	})
	if got := planStates(); got[0] != "success" {
		t.Errorf("plan status = %v, want success (standard change, one approval)", got)
	}
	if c := gh.Comments(7); len(c) != 1 || !strings.Contains(c[0].Body, "✅ allow") {
		t.Fatalf("comments = %+v, want one allow plan", c)
	}

	gh.AddReview(7, testenv.Review{User: "carol", State: "CHANGES_REQUESTED", SubmittedAt: at.Add(time.Hour)})
	review := strings.Replace(pr("submitted"), `"number":7,"pull_request"`, `"review":{"state":"changes_requested","user":{"login":"carol"}},"pull_request"`, 1)
	deliver(t, a, "pull_request_review", review, 2)
	testenv.WaitFor(t, 60*time.Second, "a second plan status and the comment edited", func() bool {
		c := gh.Comments(7)
		return len(planStates()) == 2 && len(c) == 1 && c[0].Edits == 1
	})
	if got := planStates(); got[1] != "failure" {
		t.Errorf("plan statuses = %v, want success then failure", got)
	}
	if c := gh.Comments(7); len(c) != 1 || c[0].Edits != 1 || !strings.Contains(c[0].Body, "⛔ deny") {
		t.Errorf("comments = %+v, want the one comment edited to deny", c)
	}

	// A pull request from a fork is not planned (pullRequests.planUntrusted
	// is off): its renders and policies are nobody's trusted content. The
	// plan queue is first in, first out: once pull request 7 is planned
	// again, 8 was skipped.
	gh.AddPullRequest(testenv.PR{Number: 8, Title: "Mine", Author: "mallory", Labels: []string{"change/standard"}, HeadSHA: head,
		BaseSHA: base, Fork: true, Body: "## Rollback\nRevert.\n"})
	requests := func(prefix string) int {
		n := 0
		for _, r := range gh.RequestLog() {
			if strings.HasPrefix(r, prefix) {
				n++
			}
		}
		return n
	}
	before := requests("GET /repos/acme/fleet/issues/7/comments")
	statuses := len(gh.Statuses())
	deliver(t, a, "pull_request", strings.ReplaceAll(pr("opened"), `"number":7`, `"number":8`), 3)
	deliver(t, a, "pull_request", pr("synchronize"), 4)
	testenv.WaitFor(t, 60*time.Second, "pull request 7 planned a third time", func() bool {
		return requests("GET /repos/acme/fleet/issues/7/comments") > before
	})
	if n := requests("GET /repos/acme/fleet/issues/8/comments"); n != 0 {
		t.Errorf("the fork's pull request was planned: %d comment lookups", n)
	}
	if n := len(gh.Statuses()); n != statuses {
		t.Errorf("statuses %d, want %d: the same plan again posts none, the fork's gets none", n, statuses)
	}
	if c := gh.Comments(8); len(c) != 0 {
		t.Errorf("comments on the fork's pull request = %+v, want none", c)
	}
}

// TestAgentJudgesEveryCommit: a major change held on production by business
// hours cannot ride there inside a later standard change. The canary takes
// both; production stays held while any commit it would receive is held,
// and once business hours end it receives both at once.
func TestAgentJudgesEveryCommit(t *testing.T) {
	h := newHarness(t, fleetFiles(t, "", ""))
	rev1 := h.repo.Head(t)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(time.Date(2026, 11, 25, 10, 30, 0, 0, shanghai)) // a Wednesday, in business hours
	a, _ := h.start(h.config(nil), clock, "agent-1")
	h.waitRevision(rev1, 60*time.Second, "staging", "prod", "dr")
	// The first rollout had no base: it was judged by its own rules, and
	// the records and the status say so.
	if rec := h.record("prod"); rec.Change.Rules != "bootstrap" || rec.Change.Base != "" {
		t.Errorf("first rollout's record: rules %q, base %q; want bootstrap, none", rec.Change.Rules, rec.Change.Base)
	}
	testenv.WaitFor(t, 10*time.Second, "bootstrap in the status", func() bool {
		for _, w := range a.Status().Waves {
			for _, c := range w.Clusters {
				if c.Name == "prod" && c.Rules == "bootstrap" {
					return true
				}
			}
		}
		return false
	})

	major := "version 2\n\n## Rollback\nRevert it.\n\nChange-Category: major\nApproved-by: Bob Reviewer <bob@example.com>\nApproved-by: Carol <carol@example.com>\n"
	rev2 := h.repo.Commit(t, major, setVersion(t, 2))
	push(t, a, rev2, 2)
	h.waitRevision(rev2, 60*time.Second, "staging")
	waitHeld := func(rev string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := a.Status()
			if len(st.Rollouts) > 0 && st.Rollouts[0].Revision == rev && st.Rollouts[0].Result == "held" {
				for _, hold := range st.Holds {
					if !strings.Contains(hold.Reason, "major change to production") {
						t.Errorf("hold %+v, want business hours holding the major change", hold)
					}
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not held after 30s: %+v", source.Short(rev), st.Rollouts)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitHeld(rev2)

	rev3 := h.repo.Commit(t, "version 3"+approved, setVersion(t, 3))
	push(t, a, rev3, 3)
	h.waitRevision(rev3, 60*time.Second, "staging")
	waitHeld(rev3)
	for _, c := range []string{"prod", "dr"} {
		if rec := h.record(c); rec.Revision != rev1 || h.settingsVersion(c) != "1" {
			t.Fatalf("cluster %s at %s (version %s) during business hours, want %s: the major change rode along", c, source.Short(rec.Revision), h.settingsVersion(c), source.Short(rev1))
		}
	}
	if rec := h.record("staging"); len(rec.Change.Commits) != 1 || rec.Change.Commits[0] != rev3 || rec.Change.Base != rev2 {
		t.Errorf("staging's record carries %v since %s, want %s alone since %s", rec.Change.Commits, source.Short(rec.Change.Base), source.Short(rev3), source.Short(rev2))
	}

	clock.Set(time.Date(2026, 11, 25, 18, 0, 1, 0, shanghai))
	h.waitRevision(rev3, 60*time.Second, "staging", "prod", "dr")
	rec := h.record("prod")
	if rec.Change.Category != "major" || len(rec.Change.Commits) != 2 || rec.Change.Commits[1] != rev2 || rec.Change.Base != rev1 || rec.Change.Rules != "base" {
		t.Errorf("prod's record change = %+v, want major, carrying %s and %s since %s, judged by the base's rules", rec.Change, source.Short(rev3), source.Short(rev2), source.Short(rev1))
	}
}

// TestAgentLongHoldPostsStatusOnChange: GitHub keeps at most 1,000 statuses
// per commit and context, so a hold re-evaluated every holdRecheck (5m)
// for 100 hours posts convoy/rollout once while it holds, and once more
// when the rollout is done. The test steps through the first 3 hours of
// re-evaluations (36, each a full judgement: half a second under -race;
// all 1,199 would take ten minutes), then 99 hours in, then to the
// window's end.
func TestAgentLongHoldPostsStatusOnChange(t *testing.T) {
	freeze := `  windows:
  - {name: freeze, kind: deny, schedule: "0 0 1 12 *", duration: 100h, environments: [production]}
`
	files := fleetFiles(t, freeze, "")
	files["fleet.yaml"] = strings.Replace(files["fleet.yaml"], "    source: trailers\n", "    source: github\n    github: {owner: acme, repo: fleet}\n", 1)
	h := newHarness(t, files)
	rev := h.repo.Head(t)
	gh := testenv.NewFakeGitHub(t)
	gh.SetRepo("acme", "fleet")
	gh.AddCollaborators("write", "bob")
	t.Setenv("GITHUB_TOKEN", "gh-token")
	gh.AddPullRequest(testenv.PR{Number: 3, Title: "fleet", Author: "alice", Labels: []string{"change/standard"}, HeadSHA: strings.Repeat("3", 40),
		MergeCommitSHA: rev, Merged: true, Body: "## Rollback\nRevert.\n"})
	gh.AddReview(3, testenv.Review{User: "bob", State: "APPROVED"})
	gh.AddCommit(rev, "alice", "fleet", true)

	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 0, 1, 0, 0, shanghai) // the freeze began a minute ago
	clock := newFakeClock(start)
	a, _ := h.start(h.config(func(c *Config) { c.GitHub.API = gh.URL(); c.HoldRecheck.Duration = 5 * time.Minute }), clock, "agent-1")
	rolloutStatuses := func() []string {
		var out []string
		for _, s := range gh.Statuses() {
			if s.Context == "convoy/rollout" && s.SHA == rev {
				out = append(out, s.State)
			}
		}
		return out
	}
	// evaluatedAt says whether the agent finished judging the hold at t.
	evaluatedAt := func(t time.Time) bool {
		st := a.Status()
		return len(st.Rollouts) > 0 && st.Rollouts[0].Result == "held" && st.Rollouts[0].Finished.Equal(t)
	}
	testenv.WaitFor(t, 60*time.Second, "the first hold", func() bool { return len(rolloutStatuses()) == 1 && evaluatedAt(start) })
	// Every five minutes for 100 hours the agent re-evaluates the hold.
	steps := 0
	for now := start.Add(5 * time.Minute); now.Before(start.Add(3*time.Hour + time.Minute)); now = now.Add(5 * time.Minute) {
		clock.Set(now)
		testenv.WaitFor(t, 30*time.Second, "a re-evaluation at "+now.Format(time.Kitchen), func() bool { return evaluatedAt(now) })
		steps++
	}
	late := start.Add(99 * time.Hour)
	clock.Set(late)
	testenv.WaitFor(t, 30*time.Second, "a re-evaluation 99 hours in", func() bool { return evaluatedAt(late) })
	if got := rolloutStatuses(); len(got) != 1 || got[0] != "pending" {
		t.Errorf("after %d re-evaluations: statuses %v, want one pending", steps+1, got)
	}
	clock.Set(start.Add(100 * time.Hour))
	h.waitRevision(rev, 60*time.Second, "staging", "prod", "dr")
	testenv.WaitFor(t, 30*time.Second, "the success status", func() bool { return len(rolloutStatuses()) == 2 })
	if got := rolloutStatuses(); got[1] != "success" {
		t.Errorf("statuses %v, want pending then success", got)
	}
	t.Logf("%d re-evaluations, %d statuses", steps, len(rolloutStatuses()))
}

// TestAgentPinnedGovernanceRepo: the operator pins the rules to a
// repository of their own. The config repository's own policy data does
// not judge anything: a standard change with one approval is denied while
// the pinned rules ask for two, and rolls out once the operator lowers the
// count there: the next poll sees the pinned rules moved and judges the
// revision again.
func TestAgentPinnedGovernanceRepo(t *testing.T) {
	files := fleetFiles(t, "", "")
	files["fleet.yaml"] += "  policy:\n    data:\n      approvals: {standard: 0}\n"
	h := newHarness(t, files)
	rev := h.repo.Head(t)
	rules := h.git.CreateRepo(t, "governance", "")
	pinned := func(n int) map[string]string {
		return map[string]string{"fleet.yaml": strings.Replace(fleetFiles(t, "", "")["fleet.yaml"], "    source: trailers\n",
			fmt.Sprintf("    source: trailers\n  policy:\n    data:\n      approvals: {standard: %d}\n", n), 1)}
	}
	rules.Commit(t, "two approvals for standard changes", pinned(2))
	a, _ := h.start(h.config(func(c *Config) {
		c.Governance.Repo, c.Governance.Ref = rules.URL, "main"
		c.Repo.PollInterval.Duration = time.Second
	}), nil, "agent-1")
	testenv.WaitFor(t, 60*time.Second, "a deny by the pinned rules", func() bool {
		st := a.Status()
		return len(st.Rollouts) > 0 && st.Rollouts[0].Result == "denied" && strings.Contains(st.Rollouts[0].Reason, "standard change needs 2 approvals, has 1")
	})
	if rec := h.record("staging"); rec != nil {
		t.Fatalf("staging was applied under the pinned rules' deny: %+v", rec)
	}
	rules.Commit(t, "one approval is enough", pinned(1))
	h.waitRevision(rev, 60*time.Second, "staging", "prod", "dr") // judged again by itself at the next poll
	if rec := h.record("prod"); rec.Change.Rules != "pinned" {
		t.Errorf("record says the rules were %q, want pinned", rec.Change.Rules)
	}
}

// TestAgentSecretRefKubeconfig: a cluster reached through a kubeconfig kept
// in a labelled Secret of the agent's own cluster and namespace.
func TestAgentSecretRefKubeconfig(t *testing.T) {
	files := fleetFiles(t, "", "")
	files["fleet.yaml"] = strings.Replace(files["fleet.yaml"], "kubeconfig: {context: prod}",
		"kubeconfig: {secretRef: {name: prod-kubeconfig, namespace: convoy-system, key: kubeconfig}}", 1)
	h := newHarness(t, files)
	rev := h.repo.Head(t)
	home := h.clusters.Get("staging")
	prodOnly := filepath.Join(t.TempDir(), "prod.kubeconfig")
	raw, err := os.ReadFile(h.clusters.KubeconfigFile)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	kc.CurrentContext = "prod"
	if err := clientcmd.WriteToFile(*kc, prodOnly); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(prodOnly)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := home.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "convoy-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := home.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "prod-kubeconfig", Namespace: "convoy-system", Labels: map[string]string{apply.LabelKubeconfig: "true"}},
		Data:       map[string][]byte{"kubeconfig": data},
	}); err != nil {
		t.Fatal(err)
	}
	h.start(h.config(func(c *Config) {
		c.LeaderElection.Kubeconfig, c.LeaderElection.Context, c.LeaderElection.Namespace = h.clusters.KubeconfigFile, "staging", "convoy-system"
	}), nil, "agent-1")
	h.waitRevision(rev, 60*time.Second, "staging", "prod", "dr")
	if v := h.settingsVersion("prod"); v != "1" {
		t.Errorf("prod's settings version %q, want 1: applied through the Secret's kubeconfig", v)
	}
}
