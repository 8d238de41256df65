package faults_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/convoy-gitops/convoy/internal/agent"
	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// TestGitHubFailures: with the GitHub change source, every change needs an
// approval read from GitHub. While GitHub answers 500s, is rate limited
// (403, the limit used up until past the client's wait) or answers slower than the
// agent's timeout, the change is held, never allowed: no cluster is
// written, and the hold says why. The agent re-evaluates the hold at the
// next poll by itself (not after holdRecheck's 5m) and proceeds once GitHub
// answers again; a rate limit that resets within the client's wait is
// waited out without a hold.
func TestGitHubFailures(t *testing.T) {
	spec := fleetSpec{name: "ghfaults", github: true}
	gh := testenv.NewFakeGitHub(t)
	const token = "gh-token-for-faults"
	gh.RequireToken(token)
	gh.AddCollaborators("write", "bob")
	s := state{version: 1}
	e := newEnv(t, spec, s)
	// merged makes the revision the merge commit of an approved pull request.
	merged := func(pr int, rev string) {
		gh.AddCommit(rev, "Alice <alice@example.com>", fmt.Sprintf("Merge pull request #%d", pr), false)
		gh.AddPullRequest(testenv.PR{Number: pr, Title: fmt.Sprintf("version %d", pr), Author: "alice",
			Labels: []string{"change/standard"}, HeadSHA: fmt.Sprintf("%040d", pr), MergeCommitSHA: rev, Merged: true})
		gh.AddReview(pr, testenv.Review{User: "bob", State: "APPROVED"})
	}
	listPulls := func(rev string) int {
		n := 0
		for _, r := range gh.RequestLog() {
			if strings.HasPrefix(r, fmt.Sprintf("GET /repos/%s/%s/commits/%s/pulls", testenv.FakeGitHubOwner, testenv.FakeGitHubRepo, rev)) {
				n++
			}
		}
		return n
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(testenv.Shared(t).KubeconfigFile, time.Second, fmt.Sprintf("github: {api: %q, tokenFile: %q}\n", gh.URL(), tokenFile))
	if cfg.HoldRecheck.Duration != agent.DefaultHoldRecheck {
		t.Fatalf("holdRecheck = %s, want the default %s: a GitHub hold must not wait for it", cfg.HoldRecheck.Duration, agent.DefaultHoldRecheck)
	}

	// waitHeld waits for rev to be held, asserts the hold's reason and that
	// no cluster got rev, and returns the hold.
	waitHeld := func(a *running, rev string, reason *regexp.Regexp) {
		t.Helper()
		st := waitStatus(t, a, 60*time.Second, "a hold of "+source.Short(rev), func(st server.Status) bool {
			return lastRollout(st).Revision == rev && lastRollout(st).Result == "held"
		})
		if len(st.Holds) != len(clusterNames) {
			t.Errorf("holds %+v, want one per cluster", st.Holds)
		}
		for _, h := range st.Holds {
			if h.Revision != rev || !reason.MatchString(h.Reason) || !strings.Contains(h.Reason, "list pull requests of") {
				t.Errorf("hold %+v, want %s held because listing its pull requests failed with /%s/", h, source.Short(rev), reason)
			}
		}
		for _, c := range clusterNames {
			if rec := e.record(c); rec != nil && rec.Revision == rev {
				t.Errorf("cluster %s got %s while GitHub failed", c, source.Short(rev))
			}
		}
	}
	// checkDone asserts rev reached every cluster with its approval.
	checkDone := func(a *running, rev string, pr int, s state) {
		t.Helper()
		e.waitRevision(rev, 60*time.Second, clusterNames...)
		for _, c := range clusterNames {
			e.checkAt(c, rev, s)
			want := apply.RecordChange{PullRequest: pr, Category: "standard", Approvers: []string{"bob"}}
			got := e.record(c).Change
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(apply.RecordChange{}, "Commits", "Base", "Rules")); diff != "" {
				t.Errorf("cluster %s: record change (-want +got):\n%s", c, diff)
			}
			if len(got.Commits) == 0 || got.Commits[0] != rev {
				t.Errorf("cluster %s: record carries %v, want %s first", c, got.Commits, source.Short(rev))
			}
		}
		waitStatus(t, a, 10*time.Second, source.Short(rev)+" done", func(st server.Status) bool {
			return lastRollout(st).Revision == rev && lastRollout(st).Result == "done" && len(st.Holds) == 0
		})
	}

	// 500s: the first two reads of the change fail, each after 2 tries.
	rev1 := e.repo.Head(t)
	merged(1, rev1)
	gh.FailNextMatching("GET /repos/*/*/commits/*/pulls", 4, 500)
	start := allWrites(t)
	a := e.start(cfg, "agent-1", agent.Options{GitHub: agent.GitHubTuning{Timeout: 500 * time.Millisecond, MaxRetries: 1, Backoff: 50 * time.Millisecond, MaxRateLimitWait: 3 * time.Second}})
	waitHeld(a, rev1, regexp.MustCompile(`: 500 Internal Server Error after 2 tries$`))
	if n := wroteSince(t, start); n["staging"]+n["prod"]+n["dr"] != 0 {
		t.Errorf("ConfigMap writes while the change was held: %v, want none", n)
	}
	checkDone(a, rev1, 1, s)
	if n := listPulls(rev1); n != 5 {
		t.Errorf("pull requests of %s listed %d times, want 5: two held tries of 2 requests, then the one that worked", source.Short(rev1), n)
	}

	// 403 rate limited for 8s, more than the client waits (3s): held until
	// the limit resets. go-github then refuses to ask before the reset
	// (a client-side check), so the limit is not lifted early here: GitHub
	// never does.
	limited := time.Now()
	gh.RateLimit(limited.Add(8 * time.Second))
	s = state{version: 2}
	rev2 := e.commit(s)
	merged(2, rev2)
	waitHeld(a, rev2, regexp.MustCompile(`: rate limited until \S+, more than 3s away$`))
	for _, c := range clusterNames {
		e.checkAt(c, rev1, state{version: 1})
	}
	checkDone(a, rev2, 2, s)
	if d := time.Since(limited); d < 5*time.Second {
		t.Errorf("%s rolled out %s after the rate limit began, before its reset (8s) was near", source.Short(rev2), d)
	}

	// A rate limit that resets in 2s: waited out within the same try.
	s = state{version: 3}
	gh.RateLimit(time.Now().Add(2 * time.Second))
	rev3 := e.commit(s)
	merged(3, rev3)
	checkDone(a, rev3, 3, s)
	if i := slices.IndexFunc(a.Status().Rollouts, func(r server.RolloutStatus) bool { return r.Revision == rev3 && r.Result == "held" }); i >= 0 {
		t.Errorf("%s was held, want the short rate limit waited out: %+v", source.Short(rev3), a.Status().Rollouts[i])
	}

	// Slower than the 500ms timeout: held; slow but within it: proceeds.
	gh.SetLatency(1500 * time.Millisecond)
	s = state{version: 4}
	rev4 := e.commit(s)
	merged(4, rev4)
	waitHeld(a, rev4, regexp.MustCompile(`(context deadline exceeded|Client\.Timeout exceeded)`))
	gh.SetLatency(100 * time.Millisecond)
	checkDone(a, rev4, 4, s)
}
