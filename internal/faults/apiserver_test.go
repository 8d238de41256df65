package faults_test

import (
	"strings"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/agent"
	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// TestAPIServerDownMidRollout: the primary wave's API server goes down
// while the canary bakes. The rollout stops with an error naming the
// cluster; the dr wave is never touched; once the API server is back, the
// next attempt (a push) completes the rollout without writing the canary
// again.
func TestAPIServerDownMidRollout(t *testing.T) {
	spec := fleetSpec{name: "apidown", bake: "5s"}
	s := state{version: 1}
	e := newEnv(t, spec, s)
	rev := e.repo.Head(t)
	prod := testenv.NewAPIProxy(t, testenv.Shared(t).Get("prod"))
	start := allWrites(t)
	a := e.start(e.config(kubeconfig(t, prod), time.Hour, ""), "agent-1", agent.Options{})

	e.waitRevision(rev, 60*time.Second, "staging") // the canary bakes now
	baked := map[string]testenv.Requests{"staging": writes(t, "staging")}
	prod.Down()
	st := waitStatus(t, a, 60*time.Second, "the rollout to fail", func(st server.Status) bool {
		return lastRollout(st).Result == "failed"
	})
	if r := lastRollout(st); !strings.Contains(r.Reason, "cluster prod") || !strings.Contains(r.Reason, "connection refused") {
		t.Errorf("rollout reason = %q, want it to name cluster prod and the refused connection", r.Reason)
	}
	// The status page reads every cluster's record once the rollout ended.
	waitStatus(t, a, 20*time.Second, "cluster prod's error in the status", func(st server.Status) bool {
		return strings.Contains(clusterStatus(st, "prod").Error, "connection refused")
	})
	e.checkAt("staging", rev, s)
	e.checkUntouched("prod")
	e.checkUntouched("dr")
	if n := wroteSince(t, start)["dr"]; n != 0 {
		t.Errorf("dr: %d ConfigMap writes, want 0: a later wave ran", n)
	}

	if err := prod.Up(); err != nil {
		t.Fatal(err)
	}
	a.Trigger()
	e.waitRevision(rev, 60*time.Second, clusterNames...)
	for _, c := range clusterNames {
		e.checkAt(c, rev, s)
	}
	if n := wroteSince(t, baked)["staging"]; n != 0 {
		t.Errorf("staging: %d ConfigMap writes after its wave was done, want 0", n)
	}
	waitStatus(t, a, 10*time.Second, "the rollout to be done", func(st server.Status) bool {
		return lastRollout(st).Result == "done" && lastRollout(st).Revision == rev
	})
}

// TestSlowAPIServer: the primary wave's API server turns slower than the
// agent's request timeout while the canary bakes. Requests time out (the
// proxy forwards none of them: nothing is written on prod), the rollout
// fails with the timeout, nothing hangs, and the agent retries at each
// poll; once the API server is merely slow (under the timeout), the
// rollout resumes by itself and completes without writing the canary again.
func TestSlowAPIServer(t *testing.T) {
	spec := fleetSpec{name: "slowapi", bake: "5s"}
	s := state{version: 1}
	e := newEnv(t, spec, s)
	rev := e.repo.Head(t)
	prod := testenv.NewAPIProxy(t, testenv.Shared(t).Get("prod"))
	a := e.start(e.config(kubeconfig(t, prod), time.Second, ""), "agent-1", agent.Options{ClusterTimeout: 2 * time.Second})

	e.waitRevision(rev, 60*time.Second, "staging")
	prod.SetLatency(4 * time.Second)
	baked := allWrites(t)
	slowed := time.Now()
	st := waitStatus(t, a, 60*time.Second, "the rollout to fail", func(st server.Status) bool {
		return lastRollout(st).Result == "failed"
	})
	t.Logf("the rollout failed %s after prod turned slow: %s", time.Since(slowed).Round(time.Millisecond), lastRollout(st).Reason)
	// The HTTP client's timeout and the request's own (timeout=2s, a
	// context deadline) are equal: either may fire first.
	if r := lastRollout(st); !strings.Contains(r.Reason, "cluster prod") ||
		!strings.Contains(r.Reason, "Client.Timeout exceeded") && !strings.Contains(r.Reason, "context deadline exceeded") {
		t.Errorf("rollout reason = %q, want it to name cluster prod and the timeout", r.Reason)
	}
	// The agent does not hang on it: it tries again at a later poll, and
	// that try times out too.
	failed := func() int {
		return strings.Count(a.logs.String(), `msg="rollout ended"`+" revision="+source.Short(rev)+" result=failed")
	}
	first := failed()
	testenv.WaitFor(t, 20*time.Second, "another try while prod is slow", func() bool { return failed() > first })
	if st := a.Status(); lastRollout(st).Result != "failed" {
		t.Errorf("while prod is slow: last rollout %+v, want failed", lastRollout(st))
	}
	e.checkAt("staging", rev, s)
	e.checkUntouched("prod")
	e.checkUntouched("dr")
	if n := wroteSince(t, baked); n["prod"] != 0 || n["dr"] != 0 {
		t.Errorf("ConfigMap writes while prod timed out: %v, want none on prod and dr", n)
	}

	prod.SetLatency(300 * time.Millisecond) // slow, but within the timeout
	e.waitRevision(rev, 90*time.Second, clusterNames...)
	for _, c := range clusterNames {
		e.checkAt(c, rev, s)
	}
	if n := wroteSince(t, baked)["staging"]; n != 0 {
		t.Errorf("staging: %d ConfigMap writes after its wave was done, want 0", n)
	}
}
