package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/source"
)

// Reconcile actions in a ReconcileOutcome.
const (
	ReconcileInSync    = "in-sync"   // no drift
	ReconcileCorrected = "corrected" // drifted objects were re-applied
	ReconcileSkipped   = "skipped"   // not at the plan's revision: a rollout's job
	ReconcileFailed    = "failed"    // the check or the correction failed
)

// ReconcileOutcome reports what one drift reconciliation did, per cluster
// in plan order.
type ReconcileOutcome struct {
	Revision string             `json:"revision"`
	Clusters []ReconcileCluster `json:"clusters"`
}

// ReconcileCluster is one cluster's part of a ReconcileOutcome.
type ReconcileCluster struct {
	Name      string        `json:"name"`
	Action    string        `json:"action"`
	Reason    string        `json:"reason,omitempty"`    // why a cluster was skipped
	Error     string        `json:"error,omitempty"`     // why it failed
	Drifted   []string      `json:"drifted,omitempty"`   // IDs found drifted
	Corrected []string      `json:"corrected,omitempty"` // IDs re-applied
	Duration  time.Duration `json:"duration"`
}

// Reconcile finds and corrects drift on every cluster of plan that runs
// plan's revision: its record is at plan.Revision with the target's render
// hash and status applied. On those it runs apply's Drift (one metadata
// LIST per kind and namespace) and re-applies only the drifted objects with
// Correct. Other clusters are skipped: bringing them to the revision is a
// rollout's job. Policy is not evaluated again: the state restored is the
// one a rollout already applied under policy.
//
// Clusters are reconciled in parallel. The error joins every cluster's
// failure; the outcome is complete in every case.
//
// Reconcile must not run at the same time as Run for the same fleet: a
// correction of the old revision could overwrite objects a rollout just
// applied (its record write would then fail with apply.ErrConflict, but the
// objects would already be written). The agent serialises the two.
func (r *Runner) Reconcile(ctx context.Context, plan *Plan) (*ReconcileOutcome, error) {
	out := &ReconcileOutcome{Revision: plan.Revision, Clusters: make([]ReconcileCluster, len(plan.Targets))}
	errs := make([]error, len(plan.Targets))
	var wg sync.WaitGroup
	for i := range plan.Targets {
		t := &plan.Targets[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			out.Clusters[i], errs[i] = r.reconcileCluster(ctx, plan, t)
			out.Clusters[i].Duration = time.Since(began)
		}()
	}
	wg.Wait()
	for _, c := range out.Clusters {
		if r.Log == nil {
			break
		}
		r.Log.Info("reconcile "+c.Action, "fleet", r.Fleet.Name, "cluster", c.Name, "revision", source.Short(plan.Revision),
			"drifted", len(c.Drifted), "corrected", c.Corrected, "reason", c.Reason, "error", c.Error)
	}
	return out, errors.Join(errs...)
}

func (r *Runner) reconcileCluster(ctx context.Context, plan *Plan, t *Target) (ReconcileCluster, error) {
	name := t.Cluster.Name
	rc := ReconcileCluster{Name: name}
	fail := func(err error) (ReconcileCluster, error) {
		rc.Action, rc.Error = ReconcileFailed, err.Error()
		return rc, err
	}
	a, err := r.Connect(ctx, t.Cluster)
	if err != nil {
		return fail(err)
	}
	rec, err := a.ReadRecord(ctx)
	if err != nil {
		return fail(fmt.Errorf("cluster %s: %w", name, err))
	}
	switch {
	case rec == nil:
		rc.Action, rc.Reason = ReconcileSkipped, "no record: nothing rolled out yet"
	case rec.Revision != plan.Revision:
		rc.Action, rc.Reason = ReconcileSkipped, fmt.Sprintf("runs %s, not %s", source.Short(rec.Revision), source.Short(plan.Revision))
	case rec.Status != apply.StatusApplied:
		rc.Action, rc.Reason = ReconcileSkipped, "record status is "+rec.Status
	case rec.RenderHash != t.Hash:
		rc.Action, rc.Reason = ReconcileSkipped, "render changed since the rollout"
	}
	if rc.Action == ReconcileSkipped {
		return rc, nil
	}
	if rc.Drifted, err = a.Drift(ctx, rec); err != nil {
		return fail(err)
	}
	if len(rc.Drifted) == 0 {
		rc.Action = ReconcileInSync
		return rc, nil
	}
	rc.Corrected, err = a.Correct(ctx, t.Objects, rc.Drifted, rec)
	if err != nil {
		return fail(err)
	}
	rc.Action = ReconcileCorrected
	if len(rc.Corrected) == 0 {
		// Only inventory entries this render no longer has (a failed
		// prune): the next rollout's prune retries them.
		rc.Action, rc.Reason = ReconcileInSync, "drifted objects are no longer rendered"
	}
	return rc, nil
}

// ReconcileEvery reconciles at each time schedule gives (the fleet's
// spec.reconcile schedule), with a plan made by planFn just before each
// run, and passes each result to onResult (when set). A planFn error is
// passed on too, and the loop goes on. It returns when ctx is done.
// The Runner's Now and Sleep are its clock; the next run is always counted
// from the end of the previous one, so slow runs skip ticks instead of
// piling up.
func (r *Runner) ReconcileEvery(ctx context.Context, schedule cron.Schedule, planFn func(context.Context) (*Plan, error), onResult func(*ReconcileOutcome, error)) {
	for {
		now := r.now()
		next := schedule.Next(now)
		if next.IsZero() {
			return // the schedule never fires again
		}
		if err := r.sleep(ctx, next.Sub(now)); err != nil || ctx.Err() != nil {
			return
		}
		plan, err := planFn(ctx)
		var out *ReconcileOutcome
		if err == nil {
			out, err = r.Reconcile(ctx, plan)
		} else {
			err = fmt.Errorf("reconcile: plan: %w", err)
		}
		if onResult != nil {
			onResult(out, err)
		}
	}
}
