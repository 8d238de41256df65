package agent

// The agent's loops: rollouts (polls, pushes, holds), drift correction,
// pull-request plans.

import (
	"context"
	"sync"
	"time"

	"github.com/convoy-gitops/convoy/internal/rollout"
	"github.com/convoy-gitops/convoy/internal/source"
)

// Lead runs the leader's work until ctx ends: the rollout loop, the drift
// loop and the pull-request plan loop. A rollout in progress when ctx ends
// finishes the cluster it is applying and starts no other.
func (a *Agent) Lead(ctx context.Context) {
	a.metrics.SetLeader(true)
	defer a.metrics.SetLeader(false)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.driftLoop(ctx) }()
	go func() { defer wg.Done(); a.planLoop(ctx) }()
	a.rolloutLoop(ctx)
	wg.Wait()
}

func (a *Agent) rolloutLoop(ctx context.Context) {
	pushes := make(chan struct{}, 1)
	go func() {
		for {
			if _, err := a.rollouts.Get(ctx); err != nil {
				return
			}
			select {
			case pushes <- struct{}{}:
			default: // one pending wake-up is enough: the branch head is fetched
			}
		}
	}()
	poll := time.NewTicker(a.cfg.Repo.PollInterval.Duration)
	defer poll.Stop()
	for {
		a.cycle(ctx)
		var holdC <-chan time.Time
		if at := a.holdAt(); !at.IsZero() {
			holdC = a.clock.After(at.Sub(a.clock.Now()))
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-pushes:
			a.debounce(ctx, pushes)
		case <-holdC:
		case <-a.wake:
		}
	}
}

// debounce waits for a burst of pushes to end, so that ten pushes in a
// second become one rollout of the newest commit.
func (a *Agent) debounce(ctx context.Context, pushes <-chan struct{}) {
	t := time.NewTimer(a.cfg.Debounce.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pushes:
			t.Reset(a.cfg.Debounce.Duration)
		case <-t.C:
			return
		}
	}
}

func (a *Agent) holdAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.result != string(rollout.Held) {
		return time.Time{}
	}
	return a.st.holdAt
}

// cycle fetches the branch head and rolls it out when there is work: a new
// revision, a hold due for re-evaluation, a retry, or an event.
func (a *Agent) cycle(ctx context.Context) {
	snap, err := a.fetch(ctx)
	if err != nil {
		return
	}
	a.recheckOnNewRules(ctx)
	for snap != nil && ctx.Err() == nil {
		if !a.needsWork(snap.Revision) {
			return
		}
		a.busy.Lock()
		next := a.rollout(ctx, snap)
		a.busy.Unlock()
		snap = next
	}
}

// fetch gets the branch head (nothing is downloaded when it did not
// move). An error keeps the last good revision and is reported.
func (a *Agent) fetch(ctx context.Context) (*source.Snapshot, error) {
	a.mu.Lock()
	last := a.st.snap
	a.mu.Unlock()
	lastRev := ""
	if last != nil {
		lastRev = last.Revision
	}
	began := time.Now()
	snap, err := a.src.Fetch(ctx, lastRev)
	a.metrics.ObserveGitFetch(time.Since(began), err)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.lastFetch = time.Now() // wall time: readiness is about git answering, not the policy clock
	if err != nil {
		if ctx.Err() == nil {
			a.st.fetchErr = err.Error()
			a.log.Error("fetch failed; keeping the last good revision", "repo", a.src.URL(), "revision", lastRev, "error", err)
		}
		return nil, err
	}
	a.st.fetchErr, a.st.lastSuccess = "", a.st.lastFetch
	if snap.Unchanged {
		return last, nil
	}
	a.log.Info("fetched", "repo", a.src.URL(), "revision", snap.Revision)
	a.st.snap = snap
	return snap, nil
}

func (a *Agent) needsWork(rev string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := &a.st
	if st.revision != rev {
		return true
	}
	recheck := st.recheck
	st.recheck = false
	switch st.result {
	case string(rollout.Held):
		return recheck || !a.clock.Now().Before(st.holdAt)
	case string(rollout.Denied):
		return recheck // new approvals or labels may lift a deny
	case string(rollout.Failed), "error":
		return st.retry || recheck
	}
	return false
}

// driftLoop corrects drift on the fleet's reconcile schedule, on clusters
// at the revision last rolled out, never during a rollout.
func (a *Agent) driftLoop(ctx context.Context) {
	for {
		a.mu.Lock()
		f := a.st.fleet
		a.mu.Unlock()
		wait := time.Minute // no fleet yet, or no schedule: look again later
		if f != nil && f.Reconcile.Cron != nil {
			now := a.clock.Now()
			wait = f.Reconcile.Cron.Next(now).Sub(now)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(wait):
		}
		if f == nil || f.Reconcile.Cron == nil {
			continue
		}
		a.reconcile(ctx)
	}
}

func (a *Agent) reconcile(ctx context.Context) {
	a.busy.Lock()
	defer a.busy.Unlock()
	a.mu.Lock()
	plan, f := a.st.plan, a.st.fleet
	a.mu.Unlock()
	if plan == nil || f == nil {
		return
	}
	runner := &rollout.Runner{Fleet: f, Connect: a.clusters.Cached(f.Name), Agent: a.writer(), Log: a.log, Now: a.clock.Now}
	out, err := runner.Reconcile(ctx, plan)
	if out != nil {
		for _, c := range out.Clusters {
			if c.Action == rollout.ReconcileFailed {
				a.clusters.Forget(f.Name, c.Name)
			}
		}
	}
	if err != nil {
		a.log.Error("drift correction", "revision", source.Short(plan.Revision), "error", err)
	}
	if out != nil {
		for _, c := range out.Clusters {
			a.metrics.DriftCorrected(c.Name, len(c.Corrected))
		}
		a.refreshClusters(ctx, f)
	}
}

// planLoop plans pull requests from the webhook's plan queue, apart from
// rollouts. A review or label event on the pull request of the revision
// being held or denied re-evaluates that revision.
func (a *Agent) planLoop(ctx context.Context) {
	for {
		it, err := a.plans.Get(ctx)
		if err != nil {
			return
		}
		a.mu.Lock()
		ch, result := a.st.change, a.st.result
		a.mu.Unlock()
		if ch != nil && ch.PullRequest != nil && ch.PullRequest.Number == it.PR && (result == string(rollout.Held) || result == string(rollout.Denied)) {
			a.Recheck()
		}
		if err := a.planPR(ctx, it.PR); err != nil {
			a.log.Warn("pull request plan", "pr", it.PR, "error", err)
		}
	}
}
