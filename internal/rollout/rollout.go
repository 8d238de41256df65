package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/convoy-gitops/convoy/internal/analysis"
	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/source"
)

// Target is one cluster's part of a rollout: what to apply there and what
// the policies said about it.
type Target struct {
	Cluster  *fleet.Cluster
	Objects  []*unstructured.Unstructured
	Hash     string // the render's content hash; equal hashes mean nothing to apply
	Decision policy.Decision
	Diff     *policy.Diff // the live diff when the cluster was reachable at plan time
	// Change is what the cluster receives: every commit since Base.
	Change *change.Change
	// Base is the trusted base whose rules judged the cluster; Origin says
	// where the rules came from (trust.OriginBase, OriginPinned,
	// OriginBootstrap).
	Base, Origin string
	// TrustedBots are the apps whose approvals count under those rules.
	TrustedBots []string
	// Analyses gate the cluster in its wave, measured on Prometheus: the
	// rules' (which the change cannot edit) and those the change adds.
	Analyses   []*fleet.Analysis
	Prometheus *fleet.Prometheus
}

// Plan is a revision ready to roll out: one Target per cluster.
type Plan struct {
	Revision string
	Change   *change.Change
	Targets  []Target
}

// RenderFunc renders one cluster at another revision, for rollback.
type RenderFunc func(ctx context.Context, revision string, c *fleet.Cluster) (objs []*unstructured.Unstructured, hash string, err error)

// Cluster is what the wave engine and drift correction ask of one cluster:
// its record, a dry-run and an apply (with health and prune), a diff, and
// drift found and corrected. *apply.Applier is the real one; the engine's
// own tests use one in memory.
type Cluster interface {
	ReadRecord(ctx context.Context) (*apply.Record, error)
	WriteRecord(ctx context.Context, rec *apply.Record) error
	Changed(objs []*unstructured.Unstructured, rec *apply.Record) []*unstructured.Unstructured
	DryRun(ctx context.Context, objs []*unstructured.Unstructured) error
	Apply(ctx context.Context, objs []*unstructured.Unstructured, prev *apply.Record, opts apply.Options) (*apply.Result, error)
	Diff(ctx context.Context, objs []*unstructured.Unstructured, prev *apply.Record) (*apply.Diff, error)
	Drift(ctx context.Context, rec *apply.Record) ([]string, error)
	Correct(ctx context.Context, objs []*unstructured.Unstructured, drifted []string, rec *apply.Record) ([]string, error)
}

var _ Cluster = (*apply.Applier)(nil)

// ConnectFunc reaches a cluster.
type ConnectFunc func(ctx context.Context, c *fleet.Cluster) (Cluster, error)

// Runner runs rollouts of one fleet.
type Runner struct {
	Fleet   *fleet.Fleet
	Connect ConnectFunc
	// Previous renders the revision a cluster's record held before, for
	// rollbackOnFailure. Nil disables rollback.
	Previous   RenderFunc
	AllowEmpty bool
	Agent      string // written into records: who applied
	Log        *slog.Logger
	// Progress, when set, receives an event per step.
	Progress func(Event)
	// Sleep waits for bake times; tests shorten it. time.After when nil.
	Sleep func(ctx context.Context, d time.Duration) error
	// WaitInterval is the health poll interval; 1s when zero.
	WaitInterval time.Duration
	// Now is the clock for records; time.Now when nil.
	Now func() time.Time
	// Superseded, when set, is asked before each wave after the first:
	// a newer revision to roll out. The rollout then stops with Result
	// Superseded (the waves done stay done, the rest untouched) and the
	// error wraps ErrSuperseded.
	Superseded func() (newer string, ok bool)
	// Analyze measures the analyses that gate waves (fleet.yaml's
	// spec.rollout.analysis); a wave they gate fails without it.
	Analyze AnalyzeFunc

	emitMu sync.Mutex // Progress is called from one goroutine at a time
}

// Result of a rollout.
type Result string

const (
	Done   Result = "done"   // every cluster runs the revision, healthy
	Held   Result = "held"   // a wave is held by policy or an undecided analysis; earlier waves are done
	Denied Result = "denied" // policy denied a cluster; nothing was written
	Failed Result = "failed" // a wave failed (and was rolled back if configured)
	// Superseded: a newer revision arrived; the waves done stay done, the
	// rest were left for the newer revision.
	Superseded Result = "superseded"
)

// Cluster actions in an Outcome.
const (
	ActionApplied    = "applied"
	ActionSkipped    = "skipped"     // already at the revision with the same render
	ActionFailed     = "failed"      // apply or health failed
	ActionRolledBack = "rolled-back" // failed, then the previous revision was re-applied
	ActionHeld       = "held"
	ActionUntouched  = "untouched" // a later wave that did not run
)

// Outcome reports what a rollout did, cluster by cluster, in wave order.
type Outcome struct {
	Revision string           `json:"revision"`
	Result   Result           `json:"result"`
	Reason   string           `json:"reason,omitempty"`
	Clusters []ClusterOutcome `json:"clusters"`
}

// Untouched reports whether the rollout wrote to no cluster: it stopped
// before (a cluster could not be reached, an object was rejected by the
// dry-run) or was denied.
func (o *Outcome) Untouched() bool {
	for _, c := range o.Clusters {
		if c.Action != ActionUntouched {
			return false
		}
	}
	return true
}

// ClusterOutcome is one cluster's part of an Outcome.
type ClusterOutcome struct {
	Name     string        `json:"name"`
	Wave     string        `json:"wave"`
	Action   string        `json:"action"`
	Error    string        `json:"error,omitempty"`
	Applied  int           `json:"applied"` // objects created or configured
	Pruned   int           `json:"pruned"`
	Duration time.Duration `json:"duration"`
	// Measurements are the last measurement of each analysis that gated
	// the cluster, one line each.
	Measurements []analysis.Measurement `json:"measurements,omitempty"`
}

// Event is a progress step, for the CLI's progress lines and the agent's logs.
type Event struct {
	Wave    string
	Cluster string // empty for wave-level events
	Step    string // "dry-run", "apply", "healthy", "skipped", "failed", "rollback", "bake", "analysis", "verified", "held"
	Detail  string
	Elapsed time.Duration
	// Measurement is the measurement of an "analysis" step.
	Measurement *analysis.Measurement
}

// DeniedError is returned when policy denies any cluster: nothing is written.
type DeniedError struct{ Messages []string }

func (e *DeniedError) Error() string { return strings.Join(e.Messages, "\n") }

// ErrHeld is wrapped by the error of a held rollout.
var ErrHeld = errors.New("held")

// ErrSuperseded is wrapped by the error of a superseded rollout.
var ErrSuperseded = errors.New("superseded by a newer revision")

// ErrFailedBefore is wrapped by the error of a cluster whose record says
// this revision already failed there: it is not retried until a newer one.
var ErrFailedBefore = errors.New("revision failed before")

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) emit(start time.Time, e Event) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	e.Elapsed = time.Since(start)
	if r.Log != nil {
		r.Log.Info("rollout "+e.Step, "fleet", r.Fleet.Name, "wave", e.Wave, "cluster", e.Cluster, "detail", e.Detail)
	}
	if r.Progress != nil {
		r.Progress(e)
	}
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error {
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// clusterState is what the runner knows of one cluster during a rollout.
type clusterState struct {
	target  *Target
	applier Cluster
	record  *apply.Record // nil before the first apply
	before  *apply.Record // the record as this rollout found it
	out     *ClusterOutcome
}

// Run rolls plan out. The error is a *DeniedError (nothing written), wraps
// ErrHeld (earlier waves done), or says why a wave failed; the Outcome is
// filled in every case but a connection error before any write.
func (r *Runner) Run(ctx context.Context, plan *Plan) (*Outcome, error) {
	start := time.Now()
	out := &Outcome{Revision: plan.Revision}
	byName := map[string]*clusterState{}
	for i := range plan.Targets {
		t := &plan.Targets[i]
		byName[t.Cluster.Name] = &clusterState{target: t}
	}
	for _, w := range r.Fleet.Rollout.Waves {
		for _, name := range w.Clusters {
			if byName[name] == nil {
				return nil, fmt.Errorf("plan has no target for cluster %s", name)
			}
			out.Clusters = append(out.Clusters, ClusterOutcome{Name: name, Wave: w.Name, Action: ActionUntouched})
		}
	}
	for i := range out.Clusters { // pointers only once the slice is complete
		byName[out.Clusters[i].Name].out = &out.Clusters[i]
	}

	// 1. Policy: a deny anywhere stops the revision before any write.
	var denies []string
	for _, t := range plan.Targets {
		for _, m := range t.Decision.Deny {
			denies = append(denies, fmt.Sprintf("cluster %s: deny: %s", t.Cluster.Name, m.Msg))
		}
	}
	if len(denies) > 0 {
		sort.Strings(denies)
		out.Result, out.Reason = Denied, denies[0]
		return out, &DeniedError{Messages: denies}
	}

	// 2. Connect, read records, and dry-run every cluster before any write.
	if err := r.prepare(ctx, start, byName); err != nil {
		out.Result, out.Reason = Failed, err.Error()
		return out, err
	}

	// 3. Waves in order.
	for i, w := range r.Fleet.Rollout.Waves {
		if i > 0 && r.Superseded != nil {
			if newer, ok := r.Superseded(); ok {
				r.emit(start, Event{Wave: w.Name, Step: "superseded", Detail: "by " + source.Short(newer)})
				out.Result, out.Reason = Superseded, "superseded by "+newer+" before wave "+w.Name
				return out, fmt.Errorf("rollout of %s before wave %s: %w (%s)", source.Short(plan.Revision), w.Name, ErrSuperseded, source.Short(newer))
			}
		}
		var held []string
		for _, name := range w.Clusters {
			if d := byName[name].target.Decision; d.Verdict == policy.Hold {
				for _, m := range d.Hold {
					held = append(held, fmt.Sprintf("cluster %s: hold: %s", name, m.Msg))
				}
				byName[name].out.Action = ActionHeld
			}
		}
		if len(held) > 0 {
			r.emit(start, Event{Wave: w.Name, Step: "held", Detail: held[0]})
			out.Result, out.Reason = Held, held[0]
			return out, fmt.Errorf("wave %s: %w by policy: %s", w.Name, ErrHeld, strings.Join(held, "; "))
		}
		if err := ctx.Err(); err != nil {
			out.Result, out.Reason = Failed, "interrupted before wave "+w.Name
			return out, fmt.Errorf("rollout interrupted before wave %s: %w", w.Name, err)
		}
		if err := r.runWave(ctx, start, plan, w, byName); err != nil {
			out.Result, out.Reason = Failed, err.Error()
			if r.Fleet.Rollout.FailFast {
				return out, err
			}
			continue
		}
		if gates := r.gatesOf(w, byName); len(gates) > 0 {
			// The analyses run through the bake, in place of it.
			if err := r.verify(ctx, start, plan, w, gates); err != nil {
				if errors.Is(err, ErrHeld) {
					out.Result, out.Reason = Held, err.Error()
					return out, err
				}
				out.Result, out.Reason = Failed, err.Error()
				if errors.Is(err, ErrAnalysisFailed) {
					err = r.rollbackWave(ctx, start, plan, w, byName, err)
				}
				if r.Fleet.Rollout.FailFast {
					return out, err
				}
			}
			continue
		}
		if w.Bake > 0 && !isLastWave(r.Fleet, w.Name) && changedAny(w, byName) {
			r.emit(start, Event{Wave: w.Name, Step: "bake", Detail: w.Bake.String()})
			if err := r.sleep(ctx, w.Bake); err != nil {
				out.Result, out.Reason = Failed, err.Error()
				return out, fmt.Errorf("wave %s: bake: %w", w.Name, err)
			}
		}
	}
	if out.Result == Failed {
		return out, errors.New(out.Reason)
	}
	out.Result = Done
	return out, nil
}

// changedAny reports whether the wave applied anything: a wave whose
// clusters were all up to date has nothing to bake.
func changedAny(w fleet.Wave, byName map[string]*clusterState) bool {
	for _, name := range w.Clusters {
		if byName[name].out.Action != ActionSkipped {
			return true
		}
	}
	return false
}

func isLastWave(f *fleet.Fleet, name string) bool {
	ws := f.Rollout.Waves
	return len(ws) > 0 && ws[len(ws)-1].Name == name
}

// runWave applies the clusters of one wave, maxParallel at a time. When a
// cluster fails and rollbackOnFailure is set, every failed cluster of the
// wave goes back to the revision its record held.
func (r *Runner) runWave(ctx context.Context, start time.Time, plan *Plan, w fleet.Wave, byName map[string]*clusterState) error {
	par := w.MaxParallel
	if par <= 0 || par > len(w.Clusters) {
		par = len(w.Clusters)
	}
	errs := make([]error, len(w.Clusters))
	var g errgroup.Group
	g.SetLimit(par)
	// A cluster that has started is finished even when ctx is cancelled (an
	// interrupt, a shutdown): a half-applied cluster is worse than a late
	// stop. Its own waits are still bounded by the health timeout. Clusters
	// not yet started are not started.
	inFlight := context.WithoutCancel(ctx)
	for i, name := range w.Clusters {
		st := byName[name]
		g.Go(func() error { // starts once a slot is free
			if err := ctx.Err(); err != nil {
				errs[i] = fmt.Errorf("cluster %s: not started: %w", name, err)
				return nil
			}
			errs[i] = r.applyCluster(inFlight, start, plan, st)
			return nil
		})
	}
	_ = g.Wait()
	err := errors.Join(errs...)
	if ctx.Err() != nil {
		// Interrupted: no rollback, the next run resumes from the records.
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("wave %s interrupted: %w", w.Name, err)
	}
	if err == nil {
		return nil
	}
	if r.Fleet.Rollout.RollbackOnFailure && r.Previous != nil {
		for i, name := range w.Clusters {
			// A record conflict is another writer's business; a revision that
			// failed before was rolled back then and runs the old one now.
			if errs[i] != nil && !errors.Is(errs[i], apply.ErrConflict) && !errors.Is(errs[i], ErrFailedBefore) {
				if rbErr := r.rollback(ctx, start, plan, byName[name], errs[i]); rbErr != nil {
					err = errors.Join(err, rbErr)
				}
			}
		}
	}
	return fmt.Errorf("wave %s failed: %w", w.Name, err)
}
