package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/analysis"
	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/rollout"
)

// The driver, end to end without clusters: a repository rendered and
// judged for real, the waves run on clusters in memory, deployments on a
// forge in memory.

const driverFleet = `apiVersion: convoy.dev/v1alpha1
kind: Fleet
metadata: {name: shop}
spec:
  clusters:
  - {name: staging, environment: staging, path: clusters/staging, kubeconfig: {context: staging}}
  - {name: prod, environment: production, path: clusters/prod, kubeconfig: {context: prod}}
  rollout:
    failFast: true
    rollbackOnFailure: true
    waves:
    - {name: canary, clusters: [staging]}
    - {name: main, clusters: [prod]}
`

// driverRepo writes a checkout whose clusters each render one ConfigMap
// saying revision.
func driverRepo(t *testing.T, revision string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"fleet.yaml": driverFleet}
	for _, c := range []string{"staging", "prod"} {
		files["clusters/"+c+"/kustomization.yaml"] = "resources: [app.yaml]\n"
		files["clusters/"+c+"/app.yaml"] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: shop}\ndata: {revision: %s}\n", revision)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// memConnector hands out an engineEnv's clusters and counts forgets.
type memConnector struct {
	e       *engineEnv
	forgets []string
}

func (m *memConnector) Connect(string) rollout.ConnectFunc { return m.e.runner.Connect }

func (m *memConnector) Forget(fleetName, cluster string) {
	m.forgets = append(m.forgets, fleetName+"/"+cluster)
}

// memForge records deployments as GitHub would: an ID per deployment,
// then its statuses.
type memForge struct {
	mu       sync.Mutex
	statuses map[string][]string // environment → states, in order
	envs     map[int64]string
}

func (f *memForge) CreateDeployment(_ context.Context, ref, environment string, production bool, _ map[string]any) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.envs == nil {
		f.envs, f.statuses = map[int64]string{}, map[string][]string{}
	}
	id := int64(len(f.envs) + 1)
	f.envs[id] = environment
	return id, nil
}

func (f *memForge) SetDeploymentStatus(_ context.Context, id int64, state, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	env := f.envs[id]
	f.statuses[env] = append(f.statuses[env], state)
	return nil
}

func newDriver(t *testing.T) (*rollout.Driver, *engineEnv, *memConnector) {
	t.Helper()
	e := newEngine(t, []fleet.Wave{wave("canary", "staging"), wave("main", "prod")})
	conn := &memConnector{e: e}
	d := &rollout.Driver{Planner: &rollout.Planner{}, Clusters: conn, Agent: "test"}
	return d, e, conn
}

func driverRequest(t *testing.T, dir, revision string) rollout.Request {
	t.Helper()
	f, err := fleet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ch := &change.Change{Revision: revision, Category: change.Normal,
		PullRequest: &change.PullRequest{Number: 7, Author: "alice", Body: "## Rollback\nRevert the merge.\n", Merged: true},
		Approvals:   []change.Approval{{User: "bob", Permission: "write", Type: change.TypeUser}}}
	return rollout.Request{PlanInput: rollout.PlanInput{RepoDir: dir, Revision: revision, Fleet: f, Change: ch}}
}

// One call plans, opens a deployment per cluster, runs the waves and
// forgets the fleet's kept clients; Planned sees the plan before any
// cluster is touched; a newer revision between the waves supersedes the
// rest, whose deployments go inactive.
func TestDriverPlansDeploysAndSupersedes(t *testing.T) {
	d, e, conn := newDriver(t)
	forge := &memForge{}
	req := driverRequest(t, driverRepo(t, "r2"), "r2")
	req.Deployments = &rollout.Deployments{API: forge}
	req.Planned = func(p *rollout.Plan) { e.log(fmt.Sprintf("planned %s %s", p.Revision, p.Verdict())) }
	req.Superseded = func() (string, bool) { return "r3", true }

	plan, out, err := d.Rollout(context.Background(), req)
	if plan == nil || out == nil || out.Result != rollout.Superseded {
		t.Fatalf("plan %v, outcome %+v, error %v; want superseded after the first wave", plan != nil, out, err)
	}
	if diff := cmp.Diff([]string{"planned r2 allow", "apply staging r2"}, e.events[:2]); diff != "" {
		t.Errorf("first events (-want +got):\n%s", diff)
	}
	want := map[string][]string{"staging": {"queued", "in_progress", "success"}, "prod": {"queued", "inactive"}}
	if diff := cmp.Diff(want, forge.statuses); diff != "" {
		t.Errorf("deployment statuses (-want +got):\n%s", diff)
	}
	if !slices.Equal(conn.forgets, []string{"shop/"}) {
		t.Errorf("forgets %v, want the fleet's clients forgotten once, after the rollout", conn.forgets)
	}
}

// A plan that is denied touches no cluster and opens no deployment.
func TestDriverDeniedPlanOpensNoDeployments(t *testing.T) {
	d, e, _ := newDriver(t)
	forge := &memForge{}
	req := driverRequest(t, driverRepo(t, "r2"), "r2")
	req.Change, req.ChangeErr = nil, &change.ConflictingCategories{Where: "shop#7", Categories: []string{"emergency", "normal"}}
	req.Deployments = &rollout.Deployments{API: forge}
	_, out, err := d.Rollout(context.Background(), req)
	if out == nil || out.Result != rollout.Denied || err == nil {
		t.Fatalf("outcome %+v, error %v; want denied", out, err)
	}
	if len(e.applies()) != 0 || len(forge.envs) != 0 || req.Deployments.Started() {
		t.Errorf("applies %v, deployments %v: want none", e.applies(), forge.envs)
	}
}

// Deployments already started for the revision (a hold re-evaluated) are
// reused, not opened again.
func TestDriverReusesStartedDeployments(t *testing.T) {
	d, _, _ := newDriver(t)
	forge := &memForge{}
	deployments := &rollout.Deployments{API: forge}
	for range 2 {
		req := driverRequest(t, driverRepo(t, "r2"), "r2")
		req.Deployments = deployments
		if _, out, err := d.Rollout(context.Background(), req); err != nil || out.Result != rollout.Done {
			t.Fatalf("outcome %+v, error %v", out, err)
		}
	}
	if len(forge.envs) != 2 {
		t.Errorf("%d deployments created over two attempts, want one per cluster", len(forge.envs))
	}
}

// A failed wave is rolled back to the render of the revision the cluster
// ran, checked out through Snapshot; a render that fails to plan touches
// nothing and says so.
func TestDriverRollsBackFromASnapshot(t *testing.T) {
	d, e, _ := newDriver(t)
	previous := driverRepo(t, "r1")
	var asked []string
	d.Snapshot = func(_ context.Context, rev string) (string, error) {
		asked = append(asked, rev)
		return previous, nil
	}
	e.at("staging", "r1")
	e.clusters["staging"].applyErr["r2"] = fmt.Errorf("unhealthy")
	_, out, err := d.Rollout(context.Background(), driverRequest(t, driverRepo(t, "r2"), "r2"))
	if err == nil || out.Result != rollout.Failed {
		t.Fatalf("outcome %+v, error %v; want failed", out, err)
	}
	if !slices.Equal(asked, []string{"r1"}) {
		t.Errorf("snapshots asked %v, want r1", asked)
	}
	if diff := cmp.Diff([]string{"staging r2", "staging r1"}, e.applies()); diff != "" {
		t.Errorf("applies (-want +got):\n%s", diff)
	}

	broken := driverRepo(t, "r3")
	if err := os.WriteFile(filepath.Join(broken, "clusters/prod/kustomization.yaml"), []byte("resources: [missing.yaml]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, out, err := d.Rollout(context.Background(), driverRequest(t, broken, "r3"))
	if plan != nil || out != nil || err == nil || !strings.Contains(err.Error(), "prod") {
		t.Errorf("broken render: plan %v, outcome %v, error %v; want no plan and an error naming the cluster", plan != nil, out, err)
	}
	if len(e.applies()) != 2 {
		t.Errorf("applies after a broken render: %v", e.applies())
	}
}

// A canary whose analysis fails: the driver plans the fleet's gate (on
// the canary's Prometheus), the wave fails with the measurement, the
// canary's deployment goes from success (healthy) to failure, prod's is
// never started.
func TestDriverAnalysisFailsTheCanary(t *testing.T) {
	d, e, _ := newDriver(t)
	e.at("staging", "r1")
	e.at("prod", "r1")
	dir := driverRepo(t, "r2")
	gated := strings.Replace(driverFleet, "kubeconfig: {context: staging}}", `kubeconfig: {context: staging}, prometheus: {address: "http://prom:9090"}}`, 1)
	gated = strings.Replace(gated, "- {name: canary, clusters: [staging]}", "- {name: canary, clusters: [staging], analysis: [error-rate]}", 1)
	if err := os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(gated), 0o644); err != nil {
		t.Fatal(err)
	}
	var asked []string
	d.Analyze = func(_ context.Context, c *fleet.Cluster, a *fleet.Analysis, q fleet.QueryData, at time.Time) analysis.Measurement {
		asked = append(asked, c.Name+" "+a.Name+" "+c.Prometheus.Address+" "+q.Revision)
		v := 0.08
		return analysis.Measurement{Analysis: a.Name, Cluster: c.Name, Condition: a.Condition.Text, Value: &v, Verdict: analysis.Fail, At: at}
	}
	forge := &memForge{}
	req := driverRequest(t, dir, "r2")
	req.Deployments = &rollout.Deployments{API: forge}
	_, out, err := d.Rollout(context.Background(), req)
	if !errors.Is(err, rollout.ErrAnalysisFailed) || out.Result != rollout.Failed {
		t.Fatalf("outcome %+v, error %v; want failed by the analysis", out, err)
	}
	if !slices.Equal(asked, []string{"staging error-rate http://prom:9090 r2"}) {
		t.Errorf("measured %v, want the canary's error-rate once, on its Prometheus, at r2", asked)
	}
	want := map[string][]string{"staging": {"queued", "in_progress", "success", "failure"}, "prod": {"queued"}}
	if diff := cmp.Diff(want, forge.statuses); diff != "" {
		t.Errorf("deployment statuses (-want +got):\n%s", diff)
	}
	// Without a snapshot of r1 there is nothing to roll back with (the
	// agent's test rolls back for real): the canary's record says r2 failed.
	if got := e.runs(); got["staging"] != "r2 failed" || got["prod"] != "r1 applied" {
		t.Errorf("runs %v, want r2 failed on the canary and prod untouched", got)
	}
}
