package rollout

// One cluster's steps: reaching it and dry-running its objects before any
// wave, and applying them in its wave.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/source"
)

// prepare connects to every cluster, reads its record and dry-runs its
// objects. Any rejection or unreachable cluster fails the rollout before
// a single write.
func (r *Runner) prepare(ctx context.Context, start time.Time, byName map[string]*clusterState) error {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		st := byName[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := r.Connect(ctx, st.target.Cluster)
			if err != nil {
				errs[i] = err
				return
			}
			st.applier = a
			if st.record, err = a.ReadRecord(ctx); err != nil {
				errs[i] = fmt.Errorf("cluster %s: %w", name, err)
				return
			}
			st.before = st.record
			if r.upToDate(st) {
				return
			}
			// Objects the record shows applied with the same content were
			// accepted as they are; the changed ones are dry-run.
			changed := a.Changed(st.target.Objects, st.record)
			r.emit(start, Event{Wave: st.target.Cluster.Wave, Cluster: name, Step: "dry-run", Detail: fmt.Sprintf("%d of %d objects (changed)", len(changed), len(st.target.Objects))})
			errs[i] = a.DryRun(ctx, changed)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// upToDate: the cluster already runs this render and was healthy.
func (r *Runner) upToDate(st *clusterState) bool {
	rec := st.record
	return rec != nil && rec.Status == apply.StatusApplied && rec.RenderHash == st.target.Hash && st.target.Hash != ""
}

func (r *Runner) applyCluster(ctx context.Context, start time.Time, plan *Plan, st *clusterState) error {
	c := st.target.Cluster
	began := time.Now()
	defer func() { st.out.Duration = time.Since(began) }()
	if r.upToDate(st) {
		st.out.Action = ActionSkipped
		if st.record.Revision == plan.Revision {
			r.emit(start, Event{Wave: c.Wave, Cluster: c.Name, Step: "skipped", Detail: "already at " + source.Short(plan.Revision)})
			return nil
		}
		// The revision moved but this cluster's render did not: no object
		// to write, only the record, so status and resumes see the revision.
		rec := r.newRecord(plan, st, st.record.Inventory)
		if err := st.applier.WriteRecord(ctx, rec); err != nil {
			st.out.Action, st.out.Error = ActionFailed, err.Error()
			return err
		}
		st.record = rec
		r.emit(start, Event{Wave: c.Wave, Cluster: c.Name, Step: "skipped", Detail: "render unchanged since " + source.Short(rec.PreviousRevision)})
		return nil
	}
	if rec := st.record; rec != nil && rec.FailedRevision == plan.Revision && rec.Revision != plan.Revision {
		st.out.Action = ActionFailed
		st.out.Error = fmt.Sprintf("revision %s failed here before (%s); waiting for a newer commit", source.Short(plan.Revision), rec.Reason)
		return fmt.Errorf("cluster %s: %w: %s", c.Name, ErrFailedBefore, st.out.Error)
	}
	r.emit(start, Event{Wave: c.Wave, Cluster: c.Name, Step: "apply", Detail: fmt.Sprintf("%d objects", len(st.target.Objects))})
	res, err := st.applier.Apply(ctx, st.target.Objects, st.record, apply.Options{
		HealthTimeout: r.Fleet.Rollout.HealthTimeout,
		WaitInterval:  r.WaitInterval,
		AllowEmpty:    r.AllowEmpty,
		FailFast:      true,
	})
	if res != nil {
		for _, a := range res.Applied {
			if a.Action == "created" || a.Action == "configured" {
				st.out.Applied++
			}
		}
		st.out.Pruned = len(res.Pruned)
	}
	if err != nil {
		st.out.Action, st.out.Error = ActionFailed, err.Error()
		r.emit(start, Event{Wave: c.Wave, Cluster: c.Name, Step: "failed", Detail: err.Error()})
		return err
	}
	rec := r.newRecord(plan, st, res.Inventory)
	rec.Fingerprints, rec.Hashes = res.Fingerprints, res.Hashes
	if err := st.applier.WriteRecord(ctx, rec); err != nil {
		st.out.Action, st.out.Error = ActionFailed, err.Error()
		return err
	}
	st.record = rec
	st.out.Action = ActionApplied
	r.emit(start, Event{Wave: c.Wave, Cluster: c.Name, Step: "healthy", Detail: fmt.Sprintf("%d applied, %d pruned", st.out.Applied, st.out.Pruned)})
	return nil
}
