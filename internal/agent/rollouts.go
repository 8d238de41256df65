package agent

// One revision rolled out by the agent, and how its result is kept and
// reported.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/rollout"
	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/source"
)

// rollout plans and runs one revision. It returns a newer snapshot when the
// rollout was superseded by one.
func (a *Agent) rollout(ctx context.Context, snap *source.Snapshot) *source.Snapshot {
	rev := snap.Revision
	log := a.log.With("revision", source.Short(rev))
	started := a.clock.Now()
	f, err := fleet.Load(snap.Dir)
	if err != nil {
		a.endRollout(ctx, rev, nil, nil, nil, started, fmt.Errorf("fleet: %w", err), false)
		return nil
	}
	// Each cluster is judged by the rules of the revision it runs, for
	// every commit it receives: the records say which, the mirror holds
	// them. Failing to read the repository judges nothing: try again.
	hist, err := a.historyOf(ctx, rev)
	if err != nil {
		a.endRollout(ctx, rev, f, nil, nil, started, fmt.Errorf("history: %w", err), true)
		return nil
	}
	bases := a.bases(ctx, f)
	defer a.pruneBases(bases, rev)
	v, err := a.judge(ctx, hist, rev, snap.Dir, f, bases)
	if err != nil {
		a.endRollout(ctx, rev, f, nil, nil, started, fmt.Errorf("judge: %w", err), true)
		return nil
	}
	gh := v.gh
	a.setReports(v.rules.Fleet)
	// The GitHub deployments of a revision are made once: a hold
	// re-evaluated reuses them, unless GitHub was down when they were.
	var deployments *rollout.Deployments
	if gh != nil {
		a.mu.Lock()
		if a.st.deployedRev == rev {
			deployments = a.st.deployments
		}
		a.mu.Unlock()
		if deployments == nil {
			deployments = &rollout.Deployments{API: gh, Log: a.log}
		}
	}
	var newer *source.Snapshot
	waveStart := map[string]time.Time{}
	var waveMu sync.Mutex
	plan, out, err := a.driver.Rollout(ctx, rollout.Request{
		PlanInput:   rollout.PlanInput{RepoDir: snap.Dir, Revision: rev, Fleet: f, Now: a.clock.Now(), Basis: v.basis},
		Deployments: deployments,
		Log:         log,
		Planned: func(plan *rollout.Plan) {
			for _, t := range plan.Targets {
				a.recordDecision(t.Decision)
			}
			log.Info("planned", "fleet", f.Name, "verdict", plan.Verdict(), "category", rollout.CategoryOf(plan.Change))
		},
		Progress: func(e rollout.Event) {
			waveMu.Lock()
			if _, ok := waveStart[e.Wave]; !ok {
				waveStart[e.Wave] = time.Now()
			}
			waveMu.Unlock()
			if m := e.Measurement; m != nil {
				a.metrics.AnalysisMeasured(m.Analysis, m.Cluster, m.Verdict, m.Value)
			}
			switch e.Step {
			case "healthy", "skipped", "failed":
				// The status page shows each cluster as it finishes,
				// not only when the whole rollout has.
				if c := f.ClusterByName(e.Cluster); c != nil {
					a.refreshCluster(ctx, f, c)
				}
			}
		},
		Superseded: func() (string, bool) {
			s, err := a.src.Fetch(ctx, rev)
			if err != nil || s.Unchanged {
				return "", false
			}
			a.mu.Lock()
			a.st.snap = s
			a.mu.Unlock()
			newer = s
			return s.Revision, true
		},
	})
	if plan == nil {
		a.endRollout(ctx, rev, f, nil, nil, started, fmt.Errorf("plan: %w", err), retryablePlan(err))
		return nil
	}
	if deployments != nil && deployments.Answered() > 0 {
		a.mu.Lock()
		a.st.deployedRev, a.st.deployments = rev, deployments
		a.mu.Unlock()
	}
	if out != nil {
		for _, c := range out.Clusters {
			if c.Action == rollout.ActionApplied || c.Action == rollout.ActionRolledBack {
				a.metrics.ObserveClusterApply(c.Name, c.Duration, c.Applied, c.Pruned)
			}
		}
		for w, t := range waveStart {
			a.metrics.ObserveWave(w, time.Since(t))
		}
	}
	a.endRollout(ctx, rev, f, plan, out, started, err, retryable(out, err))
	if out != nil && out.Result == rollout.Superseded {
		return newer
	}
	return nil
}

// retryable reports whether a failed rollout is tried again at the next
// poll: it wrote nothing, or it stopped because clusters did not answer
// (refused connections, timeouts), a transient fault after which the
// records say where to resume, as they do for a restarted agent. A cluster
// that answered with a failure (unhealthy, rejected, a record conflict)
// waits for a newer revision or an event.
func retryable(out *rollout.Outcome, err error) bool {
	return out != nil && out.Result == rollout.Failed && (out.Untouched() || unreachable(err))
}

// unreachable reports whether err, and every error it joins, is a request
// that got no answer from the API server.
func unreachable(err error) bool {
	for err != nil {
		if _, ok := err.(*url.Error); ok {
			return true
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs := j.Unwrap()
			for _, e := range errs {
				if !unreachable(e) {
					return false
				}
			}
			return len(errs) > 0
		}
		err = errors.Unwrap(err)
	}
	return false
}

func (a *Agent) recordDecision(d policy.Decision) {
	if d.Verdict == policy.Allow && len(d.Deny)+len(d.Hold) == 0 {
		a.metrics.PolicyDecision(string(policy.Allow), "")
		return
	}
	for _, m := range d.Deny {
		a.metrics.PolicyDecision(string(policy.Deny), m.Package)
	}
	for _, m := range d.Hold {
		a.metrics.PolicyDecision(string(policy.Hold), m.Package)
	}
}

// endRollout settles a revision's rollout: it logs and counts the result,
// keeps it as the agent's state (and the hold's next check), reports it
// as the convoy/rollout commit status, refreshes the clusters' status and
// prunes the snapshots no longer needed.
func (a *Agent) endRollout(ctx context.Context, rev string, f *fleet.Fleet, plan *rollout.Plan, out *rollout.Outcome, started time.Time, err error, retry bool) {
	result, reason := "error", ""
	if err != nil {
		reason = firstLine(err.Error())
	}
	if out != nil {
		result = string(out.Result)
		if out.Reason != "" {
			reason = out.Reason
		}
	}
	log := a.log.With("revision", source.Short(rev), "result", result)
	if err != nil && result != string(rollout.Held) && result != string(rollout.Superseded) {
		log.Error("rollout ended", "reason", reason, "error", err)
	} else {
		log.Info("rollout ended", "reason", reason)
	}
	if result != "error" {
		a.metrics.RolloutFinished(result)
	} else {
		a.metrics.RolloutFinished(string(rollout.Failed))
	}
	holds := a.keepResult(rev, f, plan, result, reason, started, retry)
	a.metrics.SetHoldsActive(len(holds))
	a.reportRollout(ctx, rev, f, result, reason, holds)
	if f != nil {
		a.refreshClusters(ctx, f)
	}
	a.pruneSnapshots(rev)
}

// keepResult keeps a revision's result as the agent's state: what to do at
// the next cycle (retry, re-evaluate a hold when it should lift), the plan
// drift correction works from, and a line of the status page's history. It
// returns the holds.
func (a *Agent) keepResult(rev string, f *fleet.Fleet, plan *rollout.Plan, result, reason string, started time.Time, retry bool) []server.HoldStatus {
	now := a.clock.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := &a.st
	if st.revision != rev {
		st.recheck = false
	}
	st.revision, st.result, st.reason, st.retry = rev, result, reason, retry
	if f != nil {
		st.fleet = f
	}
	st.hold, st.holdAt, st.plan = nil, time.Time{}, nil
	var ch *change.Change
	if plan != nil {
		ch = plan.Change
		st.change = ch
	}
	switch result {
	case string(rollout.Held):
		until, holds := holdsOf(rev, plan)
		st.hold = holds
		st.holdAt = now.Add(a.cfg.HoldRecheck.Duration)
		if plan != nil && plan.Change == nil && a.cfg.Repo.PollInterval.Duration < a.cfg.HoldRecheck.Duration {
			// Held without a change: its source (GitHub) could not be read.
			// Try again at the next poll, not after HoldRecheck.
			st.holdAt = now.Add(a.cfg.Repo.PollInterval.Duration)
		}
		if !until.IsZero() && until.Before(st.holdAt) {
			st.holdAt = until
		}
		if !st.holdAt.After(now) {
			st.holdAt = now.Add(time.Second)
		}
	case string(rollout.Done):
		st.plan = plan
	}
	entry := server.RolloutStatus{Revision: rev, Result: result, Reason: reason, Started: started, Finished: now}
	if ch != nil {
		entry.Category = ch.Category
		if ch.PullRequest != nil {
			entry.PR = ch.PullRequest.Number
		}
	}
	if n := len(st.history); n > 0 && st.history[0].Revision == rev && st.history[0].Result == result {
		st.history[0] = entry // a hold re-evaluated: one line, not one per check
	} else {
		st.history = append([]server.RolloutStatus{entry}, st.history...)
	}
	if len(st.history) > historySize {
		st.history = st.history[:historySize]
	}
	return st.hold
}

// reportRollout sets the convoy/rollout commit status of rev on the rules'
// GitHub repository (GitHub posts it only when it changes).
func (a *Agent) reportRollout(ctx context.Context, rev string, f *fleet.Fleet, result, reason string, holds []server.HoldStatus) {
	gh, _ := a.github(a.reportsFleet(f))
	if gh == nil || rev == "" {
		return
	}
	state, desc := "pending", ""
	switch result {
	case string(rollout.Done):
		state, desc = "success", "rolled out to every cluster"
	case string(rollout.Held):
		desc = "held: " + reason
		if len(holds) > 0 && !holds[0].Until.IsZero() {
			desc = fmt.Sprintf("held until %s: %s", holds[0].Until.Format(time.RFC3339), reason)
		}
	case string(rollout.Superseded):
		state, desc = "success", reason
	default:
		state, desc = "failure", result+": "+reason
	}
	if err := gh.ReportStatus(ctx, rev, state, desc, "convoy/rollout"); err != nil {
		a.log.Warn("report rollout status", "revision", source.Short(rev), "error", err)
	}
}

// pruneSnapshots drops the snapshots of every revision but rev and the
// newest fetched.
func (a *Agent) pruneSnapshots(rev string) {
	a.mu.Lock()
	keep := []string{rev}
	if a.st.snap != nil {
		keep = append(keep, a.st.snap.Revision)
	}
	a.mu.Unlock()
	if err := a.src.Prune(keep...); err != nil {
		a.log.Warn("prune snapshots", "error", err)
	}
}

// holdsOf lists the holds of a plan, and the earliest time one says it
// lifts.
func holdsOf(rev string, plan *rollout.Plan) (time.Time, []server.HoldStatus) {
	var earliest time.Time
	var holds []server.HoldStatus
	if plan == nil {
		return earliest, nil
	}
	for _, t := range plan.Targets {
		for _, m := range t.Decision.Hold {
			h := server.HoldStatus{Revision: rev, Cluster: t.Cluster.Name, Reason: m.Msg}
			if u, err := time.Parse(time.RFC3339, m.Until); err == nil {
				h.Until = u
				if earliest.IsZero() || u.Before(earliest) {
					earliest = u
				}
			}
			holds = append(holds, h)
		}
	}
	return earliest, holds
}

// snapshotAt checks revision out, for rendering it again (rollback).
func (a *Agent) snapshotAt(ctx context.Context, revision string) (string, error) {
	src, err := a.sourceAt(revision)
	if err != nil {
		return "", err
	}
	snap, err := src.Fetch(ctx, "")
	if err != nil {
		return "", err
	}
	return snap.Dir, nil
}

// sourceAt is the repository pinned at revision (a SHA or a ref), with the
// agent's credentials and verification.
func (a *Agent) sourceAt(revision string) (*source.Source, error) {
	opt := a.srcOpts
	opt.Revision = revision
	return source.New(opt)
}

// writer names the agent in the clusters' records.
func (a *Agent) writer() string { return "convoy-agent@" + a.identity }

// pruneBases drops the snapshots of bases no cluster runs any more.
func (a *Agent) pruneBases(bases map[string]string, rev string) {
	keep := []string{rev}
	for _, b := range bases {
		keep = append(keep, b)
	}
	if err := source.PruneDir(filepath.Join(a.cfg.WorkDir, "bases"), keep...); err != nil {
		a.log.Warn("prune base snapshots", "error", err)
	}
}

// retryablePlan reports whether a plan failed on something that passes:
// the repository or GitHub not answering, not a broken render.
func retryablePlan(err error) bool {
	return errors.Is(err, source.ErrUnreachable) || errors.Is(err, change.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}
