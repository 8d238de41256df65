package rollout

// Verifying a wave by its analyses: after the wave's clusters are healthy,
// through its bake, every analysis that gates a cluster is measured on its
// Prometheus until it passes, fails or cannot be decided.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/convoy-gitops/convoy/internal/analysis"
	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/fleet"
)

// AnalyzeFunc measures one analysis on one cluster, as of at.
type AnalyzeFunc func(ctx context.Context, c *fleet.Cluster, a *fleet.Analysis, data fleet.QueryData, at time.Time) analysis.Measurement

// ErrAnalysisFailed: an analysis failed; the wave fails with it.
var ErrAnalysisFailed = errors.New("analysis failed")

// gate is one analysis of one cluster.
type gate struct {
	st       *clusterState
	cluster  *fleet.Cluster // with the Prometheus the plan chose
	a        *fleet.Analysis
	ms       []analysis.Measurement
	next     time.Time
	verdict  string
	finished bool
}

// gatesOf lists the analyses to run for a wave: the plan's gates of each
// cluster this rollout wrote, or that runs the revision without its
// analyses passed.
func (r *Runner) gatesOf(w fleet.Wave, byName map[string]*clusterState) []*gate {
	var out []*gate
	for _, name := range w.Clusters {
		st := byName[name]
		if len(st.target.Analyses) == 0 {
			continue
		}
		pending := st.record != nil && st.record.Analysis != apply.AnalysisPassed
		if st.out.Action != ActionApplied && !(st.out.Action == ActionSkipped && pending) {
			continue
		}
		c := *st.target.Cluster
		c.Prometheus = st.target.Prometheus
		for _, a := range st.target.Analyses {
			out = append(out, &gate{st: st, a: a, cluster: &c})
		}
	}
	return out
}

// verify measures the gates from now through the bake and after it until
// each is decided. It returns nil when all passed, an error wrapping
// ErrAnalysisFailed at the first failure, and one wrapping ErrHeld when
// an analysis stays inconclusive (no value: never a success). The
// clusters' records keep the measurements and where the analyses stand.
func (r *Runner) verify(ctx context.Context, start time.Time, plan *Plan, w fleet.Wave, gates []*gate) error {
	if r.Analyze == nil {
		return fmt.Errorf("wave %s: analyses gate it, but this rollout cannot measure them", w.Name)
	}
	// The schedule counts the time slept, not the clock: the agent's clock
	// may be simulated (and stand still) while Prometheus answers for the
	// wall clock, which every query is made at.
	var began time.Time
	deadline := began.Add(w.Bake)
	// After the bake, an undecided analysis gets as many more intervals as
	// it could need to decide; then it is inconclusive.
	var grace time.Duration
	for _, g := range gates {
		g.next = began
		n := max(g.a.Count, g.a.ConsecutiveSuccesses+g.a.FailureLimit) + 1
		grace = max(grace, time.Duration(n)*g.a.Interval)
	}
	var elapsed time.Duration
	for {
		now := began.Add(elapsed)
		for _, g := range gates {
			if g.finished || g.next.After(now) {
				continue
			}
			c := g.cluster
			m := r.Analyze(ctx, c, g.a, fleet.QueryData{Cluster: c.Name, Region: c.Region, Environment: c.Environment,
				Wave: w.Name, Revision: plan.Revision, Labels: c.Labels}, time.Now())
			g.ms = append(g.ms, m)
			g.next = now.Add(g.a.Interval)
			g.verdict = analysis.Tally(g.a, g.ms)
			r.emit(start, Event{Wave: w.Name, Cluster: c.Name, Step: "analysis", Detail: m.String(), Measurement: &m})
			switch {
			case g.verdict == analysis.Fail:
				g.finished = true
			case g.verdict == analysis.Pass && (g.a.Count > 0 || !now.Before(deadline)):
				g.finished = true
			}
		}
		for _, g := range gates {
			if g.verdict == analysis.Fail {
				last := g.ms[len(g.ms)-1]
				r.keepMeasurements(ctx, plan, gates, g.st, apply.AnalysisFailed)
				return fmt.Errorf("cluster %s: %w: %s", g.st.target.Cluster.Name, ErrAnalysisFailed, last)
			}
		}
		done := !now.Before(deadline)
		for _, g := range gates {
			done = done && g.finished
		}
		if done {
			r.keepMeasurements(ctx, plan, gates, nil, apply.AnalysisPassed)
			for _, st := range clustersOf(gates) {
				var lines []string
				for _, m := range st.out.Measurements {
					lines = append(lines, m.String())
				}
				r.emit(start, Event{Wave: w.Name, Cluster: st.target.Cluster.Name, Step: "verified", Detail: strings.Join(lines, "; ")})
			}
			return nil
		}
		if now.After(deadline.Add(grace)) {
			for _, g := range gates {
				if !g.finished { // measured at least once: every gate is due at the start
					r.keepMeasurements(ctx, plan, gates, nil, apply.AnalysisPending)
					return fmt.Errorf("wave %s: %w until its analysis decides: %s", w.Name, ErrHeld, g.ms[len(g.ms)-1])
				}
			}
		}
		// Wake for the next measurement due, and no later than the bake's
		// end; past it, at least every second to check the grace.
		wake := now.Add(time.Second)
		if now.Before(deadline) {
			wake = deadline
		}
		for _, g := range gates {
			if !g.finished && g.next.Before(wake) {
				wake = g.next
			}
		}
		d := max(wake.Sub(now), time.Millisecond)
		if err := r.sleep(ctx, d); err != nil {
			return fmt.Errorf("wave %s: analysis: %w", w.Name, err)
		}
		elapsed += d
	}
}

// clustersOf lists the clusters of gates, in order, once each.
func clustersOf(gates []*gate) []*clusterState {
	var out []*clusterState
	for _, g := range gates {
		if !slices.Contains(out, g.st) {
			out = append(out, g.st)
		}
	}
	return out
}

// keepMeasurements writes, into the record of each cluster with gates,
// where its analyses stand and their last measurements; failed is the
// cluster whose analysis failed (AnalysisFailed), the others get status.
func (r *Runner) keepMeasurements(ctx context.Context, plan *Plan, gates []*gate, failed *clusterState, status string) {
	byCluster := map[*clusterState][]*gate{}
	var order []*clusterState
	for _, g := range gates {
		if byCluster[g.st] == nil {
			order = append(order, g.st)
		}
		byCluster[g.st] = append(byCluster[g.st], g)
	}
	for _, st := range order {
		if st.record == nil || st.record.Revision != plan.Revision {
			continue
		}
		rec := *st.record
		rec.Analysis, rec.Measurements = status, nil
		if failed != nil && st != failed {
			rec.Analysis = apply.AnalysisPending // its wave failed elsewhere
		}
		for _, g := range byCluster[st] {
			if len(g.ms) > 0 {
				rec.Measurements = append(rec.Measurements, g.ms[len(g.ms)-1])
			}
		}
		st.out.Measurements = rec.Measurements
		if err := st.applier.WriteRecord(ctx, &rec); err != nil {
			if r.Log != nil {
				r.Log.Warn("record the analysis", "cluster", st.target.Cluster.Name, "error", err)
			}
			continue
		}
		st.record = &rec
	}
}
