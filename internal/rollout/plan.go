package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/render"
)

// Planner renders every cluster of a revision and evaluates it against the
// policies: the first half of every rollout, and all of `convoy plan`.
type Planner struct {
	Renderer render.Renderer
	// PolicyDirs are added to the built-in policies and the repo's own policies/.
	PolicyDirs []string
	// PolicyTimeout bounds one evaluation; policy.DefaultTimeout when zero.
	PolicyTimeout time.Duration
}

// PlanInput is what a plan is made from.
type PlanInput struct {
	RepoDir  string // a checkout of Revision
	Revision string
	Fleet    *fleet.Fleet
	Change   *change.Change
	Now      time.Time
	// Diffs, per cluster, come from live dry-runs when clusters are
	// reachable; a cluster without one gets a null diff.
	Diffs map[string]*policy.Diff
	// Live, when set, reaches each cluster for a server-side dry-run diff
	// (the policy input's diff). A cluster it cannot reach gets a null diff
	// and a warning through Warn.
	Live ConnectFunc
	Warn func(msg string)
	// ChangeErr is why the change could not be read. The plan fails closed:
	// a change source that cannot be reached (change.ErrUnavailable) holds
	// every cluster, an invalid change (two category labels) denies every
	// cluster; policies are not evaluated without the change.
	ChangeErr error
}

// Plan renders and evaluates every cluster. A render error fails the whole
// plan: no cluster is planned from a broken repo. Policies that do not
// compile deny every cluster, naming each file and line (fail closed,
// DESIGN.md §4).
func (p *Planner) Plan(ctx context.Context, in PlanInput) (*Plan, error) {
	engine, err := p.Engine(in.RepoDir, in.Fleet)
	var compileErr *policy.CompileError
	if err != nil && !errors.As(err, &compileErr) {
		return nil, err
	}
	results, err := p.Renderer.All(ctx, in.RepoDir, in.Fleet, nil)
	if err != nil {
		return nil, err
	}
	byName := map[string]*render.Result{}
	for _, r := range results {
		byName[r.Cluster] = r
	}
	if in.Live != nil {
		in.Diffs = liveDiffs(ctx, in, byName)
	}
	plan := &Plan{Revision: in.Revision, Change: in.Change}
	for _, wave := range in.Fleet.WaveClusters() {
		for _, c := range wave {
			res := byName[c.Name]
			ch := in.Change
			if ch == nil {
				ch = &change.Change{Revision: in.Revision, Category: change.Unreviewed}
			}
			input, err := policy.BuildInput(in.Fleet, c, ch, res.Objects, in.Diffs[c.Name], in.Now)
			if err != nil {
				return nil, fmt.Errorf("policy input for cluster %s: %w", c.Name, err)
			}
			var d policy.Decision
			if compileErr != nil {
				d = compileErr.Decision()
			} else if in.ChangeErr != nil {
				d = changeDecision(in.ChangeErr)
			} else {
				d = engine.Evaluate(ctx, input)
			}
			// Policies see Secrets; their messages reach plans, PR
			// comments, logs and records, so Secret values never do.
			maskMessages(apply.NewMasker(res.Objects), &d)
			plan.Targets = append(plan.Targets, Target{Cluster: c, Objects: res.Objects, Hash: res.Hash, Decision: d, Diff: in.Diffs[c.Name]})
		}
	}
	return plan, nil
}

func maskMessages(m *apply.Masker, d *policy.Decision) {
	for _, set := range [][]policy.Message{d.Deny, d.Hold, d.Warn} {
		for i := range set {
			set[i].Msg = m.Mask(set[i].Msg)
		}
	}
}

// Engine compiles the built-in policies, the repo's policies/ and
// PolicyDirs, with the fleet's policy data.
func (p *Planner) Engine(repoDir string, f *fleet.Fleet) (*policy.Engine, error) {
	dirs := append([]string(nil), p.PolicyDirs...)
	if st, err := os.Stat(filepath.Join(repoDir, "policies")); err == nil && st.IsDir() {
		dirs = append([]string{filepath.Join(repoDir, "policies")}, dirs...)
	}
	return policy.New(policy.Options{Dirs: dirs, Data: f.PolicyData, Timeout: p.PolicyTimeout})
}

// Verdict is the plan's overall verdict: deny if any cluster denies, else
// hold if any holds, else allow.
func (p *Plan) Verdict() policy.Verdict {
	v := policy.Allow
	for _, t := range p.Targets {
		switch t.Decision.Verdict {
		case policy.Deny:
			return policy.Deny
		case policy.Hold:
			v = policy.Hold
		}
	}
	return v
}

// changeDecision is the decision for every cluster when the change itself
// could not be read: hold while the source is unreachable, deny when the
// change is invalid. Nothing is allowed without a change.
func changeDecision(err error) policy.Decision {
	m := policy.Message{Package: "convoy.change", Msg: err.Error()}
	if errors.Is(err, change.ErrUnavailable) {
		return policy.Decision{Verdict: policy.Hold, Hold: []policy.Message{m}, Deny: []policy.Message{}, Warn: []policy.Message{}}
	}
	return policy.Decision{Verdict: policy.Deny, Deny: []policy.Message{m}, Hold: []policy.Message{}, Warn: []policy.Message{}}
}

// liveDiffs dry-runs every cluster's render against the cluster, in parallel.
func liveDiffs(ctx context.Context, in PlanInput, byName map[string]*render.Result) map[string]*policy.Diff {
	out := map[string]*policy.Diff{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range in.Fleet.Clusters {
		c := &in.Fleet.Clusters[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := clusterDiff(ctx, in.Live, in.Fleet.Name, c, byName[c.Name])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if in.Warn != nil {
					in.Warn(fmt.Sprintf("cluster %s: no live diff: %v", c.Name, err))
				}
				return
			}
			out[c.Name] = d
		}()
	}
	wg.Wait()
	return out
}

func clusterDiff(ctx context.Context, connect ConnectFunc, fleetName string, c *fleet.Cluster, res *render.Result) (*policy.Diff, error) {
	a, err := connect(ctx, c)
	if err != nil {
		return nil, err
	}
	rec, err := apply.ReadRecord(ctx, a.Client(), fleetName)
	if err != nil {
		return nil, err
	}
	d, err := a.Diff(ctx, res.Objects, rec)
	if err != nil {
		return nil, err
	}
	return &policy.Diff{Create: d.Create, Update: d.Update, Delete: d.Delete, Unchanged: d.Unchanged}, nil
}
