package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/trust"
)

// verdict is how one revision is judged: the rules and the change of each
// cluster (trust.Basis), and the GitHub client of the change source.
type verdict struct {
	rules *trust.Rules // the fleet's rules: the change source's and the reports'
	gh    *change.GitHub
	basis func(ctx context.Context, c *fleet.Cluster) (*trust.Basis, error)
}

// history syncs the mirror of the config repository (the branch's whole
// history and the extra refs) and returns it.
func (a *Agent) history(ctx context.Context, extra ...string) (*source.History, error) {
	h, err := a.src.Mirror(ctx, filepath.Join(a.cfg.WorkDir, "mirror.git"), extra...)
	if err == nil {
		a.mu.Lock()
		a.mirror = h
		a.mu.Unlock()
	}
	return h, err
}

// historyOf returns the mirror when it holds rev already (a hold or a deny
// re-evaluated, a retry), else syncs it: a re-evaluation costs no fetch.
func (a *Agent) historyOf(ctx context.Context, rev string) (*source.History, error) {
	a.mu.Lock()
	h := a.mirror
	a.mu.Unlock()
	if h != nil {
		if _, err := h.Commit(rev); err == nil {
			return h, nil
		}
	}
	return a.history(ctx)
}

// bases reads the revision each cluster of f runs, from its record: the
// trusted base whose rules judge what it receives next. A cluster that
// cannot be read gets the revision most clusters run (its rollout fails at
// connect anyway; its plan is still judged by rules it cannot have
// changed); one never applied gets "" (bootstrap).
func (a *Agent) bases(ctx context.Context, f *fleet.Fleet) map[string]string {
	out := map[string]string{}
	var unknown []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range f.Clusters {
		c := &f.Clusters[i]
		wg.Go(func() {
			rec, err := a.clusters.Record(ctx, f.Name, c)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				unknown = append(unknown, c.Name)
			case rec == nil:
				out[c.Name] = ""
			default:
				out[c.Name] = rec.Revision
			}
		})
	}
	wg.Wait()
	common := mostCommon(out)
	for _, name := range unknown {
		out[name] = common
	}
	return out
}

// mostCommon is the revision most clusters run ("" when none runs any),
// the newest-sorting one on a tie so that the choice is stable.
func mostCommon(revs map[string]string) string {
	counts := map[string]int{}
	for _, r := range revs {
		if r != "" {
			counts[r]++
		}
	}
	var keys []string
	for r := range counts {
		keys = append(keys, r)
	}
	sort.Strings(keys)
	best := ""
	for _, r := range keys {
		if best == "" || counts[r] > counts[best] {
			best = r
		}
	}
	return best
}

// judge works out how revision rev (its snapshot dir, fleet f) is judged
// on each cluster: by the rules of the revision the cluster runs (or the
// pinned rules), with every commit since then. The change source is that
// of the fleet's rules: the pinned ones, else those most clusters run,
// else (bootstrap) the target's own.
func (a *Agent) judge(ctx context.Context, hist *source.History, rev, dir string, f *fleet.Fleet, bases map[string]string) (*verdict, error) {
	targetRules, err := trust.Load(trust.OriginBase, rev, dir)
	if err != nil {
		return nil, err
	}
	pinned, err := a.pinnedRules(ctx)
	if err != nil {
		return nil, err
	}
	j := &trust.Judge{History: hist, SnapshotDir: filepath.Join(a.cfg.WorkDir, "bases"), Pinned: pinned, MaxCommits: a.cfg.MaxCommits}
	v := &verdict{rules: pinned}
	if v.rules == nil {
		if common := mostCommon(bases); common != "" {
			if v.rules, err = j.RulesAt(ctx, common); err != nil {
				return nil, err
			}
		} else {
			v.rules = targetRules
		}
	}
	if v.gh, err = a.github(v.rules.Fleet); err != nil {
		return nil, err
	}
	if v.gh != nil {
		j.Changes, j.Teams = v.gh, v.gh
	} else {
		j.Changes = change.NewTrailers(func(_ context.Context, sha string) (string, string, error) {
			c, err := hist.Commit(sha)
			if err != nil {
				return "", "", err
			}
			return c.Message, fmt.Sprintf("%s <%s>", c.Author, c.Email), nil
		})
	}
	var mu sync.Mutex
	memo := map[string]*trust.Basis{}
	v.basis = func(ctx context.Context, c *fleet.Cluster) (*trust.Basis, error) {
		base := bases[c.Name]
		mu.Lock()
		defer mu.Unlock()
		if b, ok := memo[base]; ok {
			return b, nil
		}
		b, err := j.For(ctx, base, rev, targetRules)
		if err != nil {
			return nil, err
		}
		memo[base] = b
		return b, nil
	}
	return v, nil
}

// pinnedRules returns the operator's pinned rules: governance.dir's, or
// governance.repo's at its ref, fetched now (an unchanged ref costs a ref
// listing) and loaded once per revision; nil when none are pinned. Without
// them nothing is judged: the error fails the rollout, which is retried.
func (a *Agent) pinnedRules(ctx context.Context) (*trust.Rules, error) {
	a.mu.Lock()
	rules := a.pinned
	a.mu.Unlock()
	if a.pinSrc == nil {
		return rules, nil
	}
	last := ""
	if rules != nil {
		last = rules.Revision
	}
	snap, err := a.pinSrc.Fetch(ctx, last)
	if err != nil {
		return nil, fmt.Errorf("governance.repo: %w", err)
	}
	if snap.Unchanged && rules != nil {
		return rules, nil
	}
	if rules, err = trust.Load(trust.OriginPinned, snap.Revision, snap.Dir); err != nil {
		return nil, fmt.Errorf("governance.repo at %s: %w", source.Short(snap.Revision), err)
	}
	if err := a.pinSrc.Prune(snap.Revision); err != nil {
		a.log.Warn("prune governance snapshots", "error", err)
	}
	a.mu.Lock()
	a.pinned = rules
	a.mu.Unlock()
	return rules, nil
}

// recheckOnNewRules asks to judge the current revision again when the
// pinned repository of rules moved: a deny or a hold may not stand under
// the new rules. Fetch failures are left to the rollout, which fails closed.
func (a *Agent) recheckOnNewRules(ctx context.Context) {
	if a.pinSrc == nil {
		return
	}
	a.mu.Lock()
	before := a.pinned
	a.mu.Unlock()
	after, err := a.pinnedRules(ctx)
	if err != nil || before == nil || after.Revision == before.Revision {
		return
	}
	a.log.Info("pinned rules changed: judging the current revision again", "governance", a.pinSrc.URL(), "revision", source.Short(after.Revision))
	a.mu.Lock()
	a.st.recheck = true
	a.mu.Unlock()
}

// errUntrustedPullRequest is why a pull request is not planned.
var errUntrustedPullRequest = errors.New("not planned: the pull request comes from a fork or from an author without write access (pullRequests.planUntrusted: true plans them)")
