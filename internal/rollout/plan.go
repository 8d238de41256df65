package rollout

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/render"
	"github.com/convoy-gitops/convoy/internal/trust"
)

// Planner renders every cluster of a revision and evaluates it against the
// policies: the first half of every rollout, and all of `convoy plan`.
type Planner struct {
	// Budget bounds each cluster's render.
	Budget Budget
	// PolicyDirs are added to the built-in policies and the rules' own
	// policies/ (the operator's: the agent config's, the CLI's --policies).
	PolicyDirs []string
	// PolicyTimeout bounds one evaluation; policy.DefaultTimeout when zero.
	PolicyTimeout time.Duration
	// Protected are the namespaces no change may write to, besides
	// apply.StateNamespace: the agent's own. Objects named like convoy's
	// records are refused in any namespace.
	Protected []string
	// AllowNamespaces lifts the protection of these namespaces (the
	// operator's choice, from the agent config).
	AllowNamespaces []string
}

// Budget bounds one cluster's render: its time, its objects and their
// JSON bytes; a zero field takes render's default (render.DefaultTimeout,
// DefaultMaxObjects, DefaultMaxBytes).
type Budget struct {
	Timeout    time.Duration
	MaxObjects int
	MaxBytes   int64
}

func (p *Planner) renderer() *render.Renderer {
	return &render.Renderer{Timeout: p.Budget.Timeout, MaxObjects: p.Budget.MaxObjects, MaxBytes: p.Budget.MaxBytes}
}

// PlanInput is what a plan is made from.
type PlanInput struct {
	RepoDir  string // a checkout of Revision
	Revision string
	// Fleet is the target's fleet: its clusters, waves and paths. What
	// judges the change (policy data, windows, environments, capacities)
	// comes from each cluster's Basis.
	Fleet *fleet.Fleet
	// Change is the target's change, the plan's headline; each cluster is
	// judged on its Basis's change.
	Change *change.Change
	Now    time.Time
	// Basis gives each cluster the rules that judge it and the change it
	// receives (trust.Judge). Nil judges every cluster by the repository's
	// own rules (bootstrap) with Change and ChangeErr.
	Basis func(ctx context.Context, c *fleet.Cluster) (*trust.Basis, error)
	// Diffs, per cluster, come from live dry-runs when clusters are
	// reachable; a cluster without one gets a null diff.
	Diffs map[string]*policy.Diff
	// Live, when set, reaches each cluster for a server-side dry-run diff
	// (the policy input's diff). A cluster it cannot reach gets a null diff
	// and a warning through Warn.
	Live ConnectFunc
	Warn func(msg string)
	// ChangeErr is why the change could not be read (with a nil Basis).
	// The plan fails closed: a change source that cannot be reached
	// (change.ErrUnavailable) holds every cluster, an invalid change (two
	// category labels) denies every cluster; policies are not evaluated
	// without the change.
	ChangeErr error
}

// Plan renders and evaluates every cluster. A render error fails the whole
// plan: no cluster is planned from a broken repo. Policies that do not
// compile deny every cluster, naming each file and line (fail closed).
// Objects in protected namespaces, or named like convoy's
// records, are denied whatever the policies say.
func (p *Planner) Plan(ctx context.Context, in PlanInput) (*Plan, error) {
	basisOf := in.Basis
	if basisOf == nil {
		rules, err := trust.Load(trust.OriginBootstrap, in.Revision, in.RepoDir)
		if err != nil {
			return nil, err
		}
		fixed := &trust.Basis{Rules: rules, Change: in.Change, ChangeErr: in.ChangeErr}
		basisOf = func(context.Context, *fleet.Cluster) (*trust.Basis, error) { return fixed, nil }
	}
	results, err := p.renderer().All(ctx, in.RepoDir, in.Fleet, nil)
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
	engines := map[*trust.Rules]engineResult{}
	plan := &Plan{Revision: in.Revision, Change: in.Change}
	for _, wave := range in.Fleet.WaveClusters() {
		for _, c := range wave {
			res := byName[c.Name]
			basis, err := basisOf(ctx, c)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
			}
			er, ok := engines[basis.Rules]
			if !ok {
				er.engine, er.err = p.engine(basis.Rules)
				var compileErr *policy.CompileError
				if er.err != nil && !errors.As(er.err, &compileErr) {
					return nil, er.err
				}
				engines[basis.Rules] = er
			}
			ch := basis.Change
			if ch == nil {
				ch = &change.Change{Revision: in.Revision, Category: change.Unreviewed}
			}
			judging := basis.Rules.Judging(in.Fleet)
			input, err := policy.BuildInput(judging, basis.Rules.Cluster(c), ch, res.Objects, in.Diffs[c.Name], in.Now)
			if err != nil {
				return nil, fmt.Errorf("policy input for cluster %s: %w", c.Name, err)
			}
			var d policy.Decision
			var compileErr *policy.CompileError
			switch {
			case errors.As(er.err, &compileErr):
				d = compileErr.Decision()
			case basis.ChangeErr != nil:
				d = changeDecision(basis.ChangeErr)
			default:
				d = er.engine.Evaluate(ctx, input)
			}
			d = p.protect(d, in.Fleet.Name, res.Objects)
			// Policies see Secrets; their messages reach plans, PR
			// comments, logs and records, so Secret values never do.
			maskMessages(apply.NewMasker(res.Objects), &d)
			gates, prom := basis.Rules.Gates(in.Fleet, c)
			plan.Targets = append(plan.Targets, Target{
				Cluster: c, Objects: res.Objects, Hash: res.Hash, Decision: d, Diff: in.Diffs[c.Name],
				Change: basis.Change, Base: basis.Base, Origin: basis.Rules.Origin,
				TrustedBots: fleet.TrustedBots(basis.Rules.Fleet.PolicyData),
				Analyses:    gates, Prometheus: prom,
			})
		}
	}
	if in.Basis != nil {
		plan.Change = widest(plan.Targets, plan.Change)
	}
	return plan, nil
}

// widest is the change of the target that carries the most commits: the
// plan's headline. def when no target has a change.
func widest(targets []Target, def *change.Change) *change.Change {
	best := def
	n := -1
	for _, t := range targets {
		if t.Change != nil && len(t.Change.Commits) > n {
			best, n = t.Change, len(t.Change.Commits)
		}
	}
	return best
}

type engineResult struct {
	engine *policy.Engine
	err    error
}

func maskMessages(m *apply.Masker, d *policy.Decision) {
	for _, set := range [][]policy.Message{d.Deny, d.Hold, d.Warn} {
		for i := range set {
			set[i].Msg = m.Mask(set[i].Msg)
		}
	}
}

// engine compiles the built-in policies, the rules' own policies/ and
// PolicyDirs, with the rules' policy data.
func (p *Planner) engine(rules *trust.Rules) (*policy.Engine, error) {
	var dirs []string
	if rules.PolicyDir != "" {
		dirs = append(dirs, rules.PolicyDir)
	}
	dirs = append(dirs, p.PolicyDirs...)
	return policy.New(policy.Options{Dirs: dirs, Root: filepath.Dir(rules.PolicyDir), Data: rules.Fleet.PolicyData, Timeout: p.PolicyTimeout})
}

// ProtectedPackage names the denies of protect in messages and metrics.
const ProtectedPackage = "convoy.protected"

// protect adds to d a deny per object a change may not write: anything in
// a protected namespace (convoy's own, the agent's), a protected namespace
// itself, or an object named like convoy's record of fleetName anywhere.
// Policies cannot lift these: they are not Rego's.
func (p *Planner) protect(d policy.Decision, fleetName string, objs []*unstructured.Unstructured) policy.Decision {
	protected := map[string]bool{apply.StateNamespace: true}
	for _, ns := range p.Protected {
		if ns != "" {
			protected[ns] = true
		}
	}
	for _, ns := range p.AllowNamespaces {
		delete(protected, ns)
	}
	var added []policy.Message
	for _, o := range objs {
		id := apply.RefOf(o).String()
		ns := o.GetNamespace()
		switch {
		case protected[ns]:
			added = append(added, policy.Message{Package: ProtectedPackage,
				Msg: fmt.Sprintf("%s: namespace %s is convoy's own: no change may write to it", id, ns)})
		case o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" && protected[o.GetName()]:
			added = append(added, policy.Message{Package: ProtectedPackage,
				Msg: fmt.Sprintf("%s: namespace %s is convoy's own: no change may manage it", id, o.GetName())})
		case o.GetKind() == "ConfigMap" && o.GetName() == apply.RecordName(fleetName):
			added = append(added, policy.Message{Package: ProtectedPackage,
				Msg: fmt.Sprintf("%s: named like convoy's record of fleet %s: no change may write it", id, fleetName)})
		case (o.GetKind() == "ClusterRoleBinding" || o.GetKind() == "RoleBinding") && strings.HasPrefix(o.GetAPIVersion(), "rbac.authorization.k8s.io/"):
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, sub := range subjects {
				m, _ := sub.(map[string]any)
				if ns, _ := m["namespace"].(string); protected[ns] {
					added = append(added, policy.Message{Package: ProtectedPackage,
						Msg: fmt.Sprintf("%s: grants to a subject in namespace %s, convoy's own: no change may give convoy's namespace rights", id, ns)})
					break
				}
			}
		}
	}
	if len(added) == 0 {
		return d
	}
	d.Deny = append(append([]policy.Message{}, d.Deny...), added...)
	sort.SliceStable(d.Deny, func(i, j int) bool { return d.Deny[i].Package < d.Deny[j].Package })
	d.Verdict = policy.Deny
	return d
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
	var u *change.Unavailable
	if errors.As(err, &u) && !u.RetryAt.IsZero() {
		m.Until = u.RetryAt.UTC().Format(time.RFC3339) // a rate limit's reset: try then
	}
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
	rec, err := a.ReadRecord(ctx)
	if err != nil {
		return nil, err
	}
	d, err := a.Diff(ctx, res.Objects, rec)
	if err != nil {
		return nil, err
	}
	return &policy.Diff{Create: d.Create, Update: d.Update, Delete: d.Delete, Unchanged: d.Unchanged}, nil
}
