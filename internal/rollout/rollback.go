package rollout

// Rolling a failed cluster back to the revision its record held.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/source"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// rollback re-applies the revision the cluster's record held before this
// rollout, and records the failed revision so it is not retried.
func (r *Runner) rollback(ctx context.Context, start time.Time, plan *Plan, st *clusterState, cause error) error {
	c := st.target.Cluster
	prev := st.record
	reason := cause.Error()
	if prev == nil || prev.Revision == "" || prev.Revision == plan.Revision {
		// Nothing to go back to: record the failure so it is visible and not retried.
		rec := r.failedRecord(plan, st, reason, apply.StatusFailed)
		if err := st.applier.WriteRecord(ctx, rec); err != nil {
			return err
		}
		st.record = rec
		return nil
	}
	r.emit(start, Event{Wave: c.Wave, Cluster: c.Name, Step: "rollback", Detail: "to " + source.Short(prev.Revision)})
	objs, hash, err := r.Previous(ctx, prev.Revision, c)
	if err != nil {
		return fmt.Errorf("cluster %s: rollback to %s: render: %w", c.Name, source.Short(prev.Revision), err)
	}
	res, err := st.applier.Apply(ctx, objs, &apply.Record{Inventory: union(prev.Inventory, st.target.Objects)}, apply.Options{
		HealthTimeout: r.Fleet.Rollout.HealthTimeout,
		WaitInterval:  r.WaitInterval,
		AllowEmpty:    true,
	})
	if err != nil {
		return fmt.Errorf("cluster %s: rollback to %s: %w", c.Name, source.Short(prev.Revision), err)
	}
	rec := r.failedRecord(plan, st, reason, apply.StatusRolledBack)
	rec.RenderHash, rec.Inventory, rec.Fingerprints, rec.Hashes = hash, res.Inventory, res.Fingerprints, res.Hashes
	if err := st.applier.WriteRecord(ctx, rec); err != nil {
		return err
	}
	st.record = rec
	st.out.Action = ActionRolledBack
	return nil
}

// failedRecord keeps what runs on the cluster (the previous revision) and
// marks the target revision failed.
func (r *Runner) failedRecord(plan *Plan, st *clusterState, reason, status string) *apply.Record {
	rec := &apply.Record{Fleet: r.Fleet.Name, Cluster: st.target.Cluster.Name}
	if st.record != nil {
		*rec = *st.record
	}
	rec.Status, rec.FailedRevision, rec.Reason = status, plan.Revision, reason
	rec.Health = "unhealthy"
	rec.AppliedAt = r.now().UTC()
	rec.Agent = r.Agent
	if status == apply.StatusFailed {
		// The failed revision's objects are on the cluster: own them so a
		// later revision can prune them.
		rec.Inventory = union(rec.Inventory, st.target.Objects)
	}
	return rec
}

// union returns ids plus the IDs of objs, sorted, without duplicates.
func union(ids []string, objs []*unstructured.Unstructured) []string {
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	for _, o := range objs {
		set[apply.RefOf(o).String()] = true
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// rollbackWave puts every cluster of a wave this rollout wrote back on the
// revision its record held before, when rollbackOnFailure is set, after an
// analysis failed; each record keeps the failed revision, which is not
// retried until a newer one.
func (r *Runner) rollbackWave(ctx context.Context, start time.Time, plan *Plan, w fleet.Wave, byName map[string]*clusterState, cause error) error {
	err := fmt.Errorf("wave %s failed: %w", w.Name, cause)
	for _, name := range w.Clusters {
		st := byName[name]
		if st.out.Action != ActionApplied && st.out.Action != ActionSkipped {
			continue
		}
		st.out.Action, st.out.Error = ActionFailed, cause.Error()
		if !r.Fleet.Rollout.RollbackOnFailure || r.Previous == nil {
			rec := r.failedRecord(plan, st, cause.Error(), apply.StatusFailed)
			if werr := st.applier.WriteRecord(ctx, rec); werr != nil {
				err = errors.Join(err, werr)
			} else {
				st.record = rec
			}
			continue
		}
		// Back to what the cluster ran before this rollout, written over
		// the record as it is now.
		before := st.before
		if before == nil {
			before = &apply.Record{Fleet: r.Fleet.Name, Cluster: name}
		}
		st.record = before.At(st.record)
		// The record says why: the failed revision's analysis.
		st.record.Analysis, st.record.Measurements = apply.AnalysisFailed, st.out.Measurements
		if rbErr := r.rollback(ctx, start, plan, st, cause); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
	}
	return err
}
