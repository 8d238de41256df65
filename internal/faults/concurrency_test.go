package faults_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/agent"
	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// TestTwoAgentsWithoutLeaderElection: two agents run on the same fleet and
// clusters without leader election, a misconfiguration. Both apply the
// canary and both write its record from the same read; the proxy in front
// of staging holds both record writes until both are on the wire, so they
// race for real. Optimistic concurrency lets exactly one through: the other
// fails loudly (status and an ERROR log naming the record conflict), and the
// winner completes the rollout alone. Both rounds are checked: the record's
// creation, then an update of it.
func TestTwoAgentsWithoutLeaderElection(t *testing.T) {
	spec := fleetSpec{name: "twoagents"}
	s := state{version: 1}
	e := newEnv(t, spec, s)
	staging := testenv.NewAPIProxy(t, testenv.Shared(t).Get("staging"))
	recordPath := "/api/v1/namespaces/" + apply.StateNamespace + "/configmaps"
	holdRecordWrites := func() {
		staging.Hold(func(r *http.Request) bool {
			return (r.Method == http.MethodPost || r.Method == http.MethodPut) && strings.HasPrefix(r.URL.Path, recordPath)
		})
	}
	kc := kubeconfig(t, staging)
	holdRecordWrites()
	agents := map[string]*running{}
	for _, id := range []string{"agent-a", "agent-b"} {
		agents[id] = e.start(e.config(kc, time.Hour, ""), id, agent.Options{})
	}

	round := func(rev, verb string) {
		t.Helper()
		testenv.WaitFor(t, 60*time.Second, "both agents' record writes held at the proxy", func() bool { return len(staging.Held()) == 2 })
		for _, h := range staging.Held() {
			if !strings.HasPrefix(h, verb+" ") {
				t.Errorf("held %s, want a %s of the record", h, verb)
			}
		}
		staging.Release()
		e.waitRevision(rev, 60*time.Second, clusterNames...)
		results := map[string]server.RolloutStatus{}
		for id, a := range agents {
			results[id] = waitStatus(t, a, 30*time.Second, id+" to finish "+source.Short(rev), func(st server.Status) bool {
				r := lastRollout(st)
				return r.Revision == rev && r.Finished.After(r.Started) && r.Result != ""
			}).Rollouts[0]
		}
		var winner, loser string
		for id, r := range results {
			switch r.Result {
			case "done":
				winner = id
			case "failed":
				loser = id
			}
		}
		if winner == "" || loser == "" {
			t.Fatalf("results %+v, want one agent done and one failed", results)
		}
		want := fmt.Sprintf("write record %s/%s on cluster staging: %s", apply.StateNamespace, apply.RecordName(spec.name), apply.ErrConflict)
		if !strings.Contains(results[loser].Reason, want) {
			t.Errorf("%s failed with %q, want it to name the record conflict %q", loser, results[loser].Reason, want)
		}
		if logs := agents[loser].logs.String(); !strings.Contains(logs, `level=ERROR msg="rollout ended"`) || !strings.Contains(logs, apply.ErrConflict.Error()) {
			t.Errorf("%s's logs have no ERROR for the record conflict", loser)
		}
		for _, c := range clusterNames {
			e.checkAt(c, rev, s)
			if got := e.record(c).Agent; got != "convoy-agent@"+winner {
				t.Errorf("cluster %s: record written by %s, want %s alone (the winner)", c, got, winner)
			}
		}
		t.Logf("%s: %s won, %s failed: %s", source.Short(rev), winner, loser, results[loser].Reason)
	}

	round(e.repo.Head(t), http.MethodPost) // both create the record

	s = state{version: 2}
	rev := e.commit(s)
	holdRecordWrites()
	for _, a := range agents {
		a.Trigger()
	}
	round(rev, http.MethodPut) // both update it from the same resourceVersion
}
