package faults_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/agent"
	"github.com/convoy-gitops/convoy/internal/metrics"
	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// TestGitServerDown: after a first good rollout the git server answers 500,
// then 503. The agent keeps the last good revision (a commit pushed
// meanwhile reaches no cluster, nothing is written), reports the error in
// its status and in convoy_git_fetch_errors_total, stays ready within the
// readiness window (shortened to 5s) and turns unready once the failure
// outlasts it; when
// the server is back, the new commit rolls out and the agent is ready again.
func TestGitServerDown(t *testing.T) {
	spec := fleetSpec{name: "gitdown"}
	s1 := state{version: 1}
	e := newEnv(t, spec, s1)
	rev1 := e.repo.Head(t)
	const window = 5 * time.Second
	a := e.start(e.config(testenv.Shared(t).KubeconfigFile, time.Second, ""), "agent-1", agent.Options{ReadyWindow: window})
	e.waitRevision(rev1, 60*time.Second, clusterNames...)
	waitStatus(t, a, 10*time.Second, "rev1 done", func(st server.Status) bool { return lastRollout(st).Result == "done" })
	if err := a.Ready(); err != nil {
		t.Fatalf("Ready after a good fetch: %v", err)
	}
	before := allWrites(t)

	e.git.SetFailing(http.StatusInternalServerError)
	s2 := state{version: 2}
	rev2 := e.commit(s2) // pushed to the bare repository directly; invisible over HTTP
	st := waitStatus(t, a, 20*time.Second, "the fetch error in the status", func(st server.Status) bool {
		return strings.Contains(st.Source.Error, "500")
	})
	if st.Revision != rev1 {
		t.Errorf("status revision = %s while git fails, want the last good %s", source.Short(st.Revision), source.Short(rev1))
	}
	if n := fetchErrors(t, a.metrics); n < 1 {
		t.Errorf("convoy_git_fetch_errors_total = %v, want > 0", n)
	}
	if err := a.Ready(); err != nil && time.Since(st.Source.LastSuccess) < window {
		t.Errorf("Ready within the window: %v, want ready", err)
	}

	e.git.SetFailing(http.StatusServiceUnavailable)
	waitStatus(t, a, 20*time.Second, "the 503 in the status", func(st server.Status) bool {
		return strings.Contains(st.Source.Error, "503")
	})
	testenv.WaitFor(t, 3*window, "Ready to fail", func() bool { return a.Ready() != nil })
	if err := a.Ready(); !strings.Contains(err.Error(), "git: no successful fetch for") || !strings.Contains(err.Error(), "503") {
		t.Errorf("Ready after the window = %v, want the time since the last success and the 503", err)
	}
	if age := time.Since(a.Status().Source.LastSuccess); age < window {
		t.Errorf("Ready failed %s after the last success, within the %s window", age, window)
	}
	for _, c := range clusterNames {
		e.checkAt(c, rev1, s1)
	}
	if n := wroteSince(t, before); n["staging"]+n["prod"]+n["dr"] != 0 {
		t.Errorf("ConfigMap writes while git failed: %v, want none", n)
	}

	e.git.SetFailing(0)
	e.waitRevision(rev2, 60*time.Second, clusterNames...)
	for _, c := range clusterNames {
		e.checkAt(c, rev2, s2)
	}
	st = waitStatus(t, a, 10*time.Second, "rev2 done", func(st server.Status) bool {
		return lastRollout(st).Result == "done" && lastRollout(st).Revision == rev2
	})
	if st.Source.Error != "" {
		t.Errorf("source error after recovery = %q, want none", st.Source.Error)
	}
	if err := a.Ready(); err != nil {
		t.Errorf("Ready after recovery: %v", err)
	}
}

// fetchErrors reads convoy_git_fetch_errors_total from the agent's registry.
func fetchErrors(t *testing.T, m *metrics.Metrics) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "convoy_git_fetch_errors_total" {
			total := 0.0
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
			return total
		}
	}
	t.Fatal("no convoy_git_fetch_errors_total in the agent's registry")
	return 0
}
