package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/convoy-gitops/convoy/internal/analysis"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/source"
)

// Driver runs rollouts, one call per revision: it renders and judges every
// cluster (Planner), opens the forge's deployments, dry-runs every object
// on every cluster, then applies wave by wave (Runner) and keeps each
// cluster's record. convoy apply and the agent each make that one call;
// what is theirs (the agent's loops, holds and status page, the CLI's
// progress lines) comes in through the Request.
type Driver struct {
	Planner  *Planner
	Clusters Connector
	// Snapshot checks another revision of the repository out to a
	// directory, for rendering what a cluster ran before its failed wave
	// (rollbackOnFailure). Nil disables rollback.
	Snapshot func(ctx context.Context, revision string) (dir string, err error)
	// Agent names the writer in the clusters' records.
	Agent string
	// AllowEmpty lets an empty render prune everything convoy applied.
	AllowEmpty bool
	Log        *slog.Logger
	// Now is the clock for records; time.Now when nil.
	Now func() time.Time
	// Analyze measures the analyses that gate waves; the clusters'
	// Prometheus servers (an analysis.Analyzer) when nil.
	Analyze AnalyzeFunc

	analyzer analysis.Analyzer
}

// Connector reaches the clusters of a fleet: *Clusters, or clusters in
// memory in the engine's tests.
type Connector interface {
	// Connect reaches each cluster afresh.
	Connect(fleetName string) ConnectFunc
	// Forget drops what was kept of fleetName's cluster (every cluster
	// when cluster is empty).
	Forget(fleetName, cluster string)
}

var _ Connector = (*Clusters)(nil)

// Request is one revision to roll out, and how its caller follows it.
type Request struct {
	PlanInput
	// Deployments, when set, mirror the rollout on the forge. Ones already
	// started (an earlier attempt at the same revision, such as a hold
	// re-evaluated) are reused; a denied plan gets none.
	Deployments *Deployments
	// Log, when set, replaces the Driver's for this rollout.
	Log *slog.Logger
	// Planned, when set, sees the plan before any cluster is touched.
	Planned func(*Plan)
	// Progress, when set, receives an event per step.
	Progress func(Event)
	// Superseded, when set, is asked before each wave after the first for
	// a newer revision (see Runner.Superseded).
	Superseded func() (newer string, ok bool)
}

// Rollout plans req's revision and rolls it out. It returns the plan (nil
// when it could not be made: a render error, the repository or the forge
// unreachable) and the outcome (nil when no wave could start), with the
// error of the first of them that failed.
func (d *Driver) Rollout(ctx context.Context, req Request) (*Plan, *Outcome, error) {
	plan, err := d.Planner.Plan(ctx, req.PlanInput)
	if err != nil {
		return nil, nil, err
	}
	if req.Planned != nil {
		req.Planned(plan)
	}
	deployments := req.Deployments
	if plan.Verdict() == policy.Deny {
		deployments = nil
	}
	if deployments != nil && !deployments.Started() {
		deployments.Start(ctx, plan)
	}
	log := d.Log
	if req.Log != nil {
		log = req.Log
	}
	var newer string
	runner := &Runner{
		Fleet:      req.Fleet,
		Connect:    d.Clusters.Connect(req.Fleet.Name),
		AllowEmpty: d.AllowEmpty,
		Agent:      d.Agent,
		Log:        log,
		Now:        d.Now,
		Analyze:    d.Analyze,
		Progress: func(e Event) {
			if deployments != nil {
				deployments.Event(ctx, e)
			}
			if req.Progress != nil {
				req.Progress(e)
			}
		},
	}
	if runner.Analyze == nil {
		runner.Analyze = d.analyzer.Measure
	}
	if d.Snapshot != nil {
		runner.Previous = d.renderAt
	}
	if req.Superseded != nil {
		runner.Superseded = func() (string, bool) {
			rev, ok := req.Superseded()
			if ok {
				newer = rev
			}
			return rev, ok
		}
	}
	out, err := runner.Run(ctx, plan)
	// The rollout may have changed which kinds the clusters serve (CRDs
	// added, removed, re-scoped): later reads start from fresh discovery.
	d.Clusters.Forget(req.Fleet.Name, "")
	if out != nil && out.Result == Superseded && deployments != nil && newer != "" {
		deployments.Supersede(ctx, out, newer)
	}
	return plan, out, err
}

// renderAt renders one cluster at another revision, for rollback.
func (d *Driver) renderAt(ctx context.Context, revision string, c *fleet.Cluster) ([]*unstructured.Unstructured, string, error) {
	dir, err := d.Snapshot(ctx, revision)
	if err != nil {
		return nil, "", err
	}
	res, err := d.Planner.renderer().ClusterAt(ctx, dir, c.Name)
	if err != nil {
		return nil, "", fmt.Errorf("revision %s: %w", source.Short(revision), err)
	}
	return res.Objects, res.Hash, nil
}
