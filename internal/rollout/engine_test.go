package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/rollout"
)

// The wave engine's decisions, table-tested against clusters in memory:
// order, parallelism, bake, fail-fast, rollback, supersede, holds and
// denies. The real step, apply.Applier, is tested against real clusters.

// memCluster is a cluster in memory: the revision it runs, its record, and
// what the engine asked of it.
type memCluster struct {
	name string
	e    *engineEnv

	mu        sync.Mutex
	record    *apply.Record
	runs      string // the revision of the objects applied last
	dryRunErr error
	applyErr  map[string]error // revision → the apply's error (an unhealthy object, say)
	writeErr  error
	applies   int
	writes    int
}

func (c *memCluster) ReadRecord(context.Context) (*apply.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.record == nil {
		return nil, nil
	}
	r := *c.record
	return &r, nil
}

func (c *memCluster) WriteRecord(_ context.Context, rec *apply.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writeErr != nil {
		return c.writeErr
	}
	r := *rec
	c.record = &r
	c.writes++
	c.e.log("record " + c.name + " " + rec.Status + " " + rec.Revision)
	return nil
}

func (c *memCluster) Changed(objs []*unstructured.Unstructured, _ *apply.Record) []*unstructured.Unstructured {
	return objs
}

func (c *memCluster) DryRun(context.Context, []*unstructured.Unstructured) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dryRunErr
}

func (c *memCluster) Apply(ctx context.Context, objs []*unstructured.Unstructured, _ *apply.Record, _ apply.Options) (*apply.Result, error) {
	rev := revisionOf(objs)
	c.e.enter(c.name, rev)
	defer c.e.leave()
	c.mu.Lock()
	c.applies++
	err := c.applyErr[rev]
	c.runs = rev
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := &apply.Result{}
	for _, o := range objs {
		id := apply.RefOf(o).String()
		res.Applied = append(res.Applied, apply.ObjectChange{ID: id, Action: "configured"})
		res.Inventory = append(res.Inventory, id)
	}
	return res, nil
}

func (c *memCluster) Diff(context.Context, []*unstructured.Unstructured, *apply.Record) (*apply.Diff, error) {
	return &apply.Diff{}, nil
}

func (c *memCluster) Drift(context.Context, *apply.Record) ([]string, error) { return nil, nil }

func (c *memCluster) Correct(context.Context, []*unstructured.Unstructured, []string, *apply.Record) ([]string, error) {
	return nil, nil
}

// engineEnv is a fleet of memClusters and what happened to them.
type engineEnv struct {
	t        *testing.T
	f        *fleet.Fleet
	clusters map[string]*memCluster
	runner   *rollout.Runner

	mu       sync.Mutex
	events   []string
	inFlight int
	maxIn    int
	hold     time.Duration // each apply takes this long
	bakes    []time.Duration
}

func (e *engineEnv) log(ev string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ev)
}

func (e *engineEnv) enter(cluster, rev string) {
	e.mu.Lock()
	e.events = append(e.events, "apply "+cluster+" "+rev)
	e.inFlight++
	e.maxIn = max(e.maxIn, e.inFlight)
	d := e.hold
	e.mu.Unlock()
	time.Sleep(d)
}

func (e *engineEnv) leave() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inFlight--
}

// applies lists the "apply cluster revision" events, in order.
func (e *engineEnv) applies() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.events {
		if strings.HasPrefix(ev, "apply ") {
			out = append(out, strings.TrimPrefix(ev, "apply "))
		}
	}
	return out
}

// newEngine is a fleet of waves ("a,b" lists a wave's clusters; maxParallel
// and bake as given) whose clusters run nothing yet.
func newEngine(t *testing.T, waves []fleet.Wave) *engineEnv {
	t.Helper()
	e := &engineEnv{t: t, clusters: map[string]*memCluster{}}
	f := &fleet.Fleet{Name: "shop", Rollout: fleet.Rollout{Waves: waves, HealthTimeout: time.Second, FailFast: true, RollbackOnFailure: true}}
	for _, w := range waves {
		for _, name := range w.Clusters {
			f.Clusters = append(f.Clusters, fleet.Cluster{Name: name, Environment: "production", Wave: w.Name})
			e.clusters[name] = &memCluster{name: name, e: e, applyErr: map[string]error{}}
		}
	}
	e.f = f
	e.runner = &rollout.Runner{
		Fleet: f,
		Connect: func(_ context.Context, c *fleet.Cluster) (rollout.Cluster, error) {
			return e.clusters[c.Name], nil
		},
		Previous: func(_ context.Context, revision string, c *fleet.Cluster) ([]*unstructured.Unstructured, string, error) {
			return objectsOf(revision), "hash-" + revision, nil
		},
		Sleep: func(_ context.Context, d time.Duration) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.bakes = append(e.bakes, d)
			e.events = append(e.events, "bake "+d.String())
			return nil
		},
		Agent: "test",
	}
	return e
}

func wave(name string, clusters string, opts ...func(*fleet.Wave)) fleet.Wave {
	w := fleet.Wave{Name: name, Clusters: strings.Split(clusters, ",")}
	for _, o := range opts {
		o(&w)
	}
	return w
}

func bake(d time.Duration) func(*fleet.Wave) { return func(w *fleet.Wave) { w.Bake = d } }

func maxParallel(n int) func(*fleet.Wave) { return func(w *fleet.Wave) { w.MaxParallel = n } }

// objectsOf is a render at revision: one ConfigMap saying which.
func objectsOf(revision string) []*unstructured.Unstructured {
	return []*unstructured.Unstructured{{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "app", "namespace": "shop"},
		"data":     map[string]any{"revision": revision},
	}}}
}

func revisionOf(objs []*unstructured.Unstructured) string {
	for _, o := range objs {
		if r, ok, _ := unstructured.NestedString(o.Object, "data", "revision"); ok {
			return r
		}
	}
	return ""
}

// plan is revision for every cluster, allowed unless verdicts say otherwise.
func (e *engineEnv) plan(revision string, verdicts map[string]policy.Verdict) *rollout.Plan {
	p := &rollout.Plan{Revision: revision, Change: &change.Change{Revision: revision, Category: "normal"}}
	for i := range e.f.Clusters {
		c := &e.f.Clusters[i]
		d := policy.Decision{Verdict: policy.Allow}
		switch verdicts[c.Name] {
		case policy.Hold:
			d = policy.Decision{Verdict: policy.Hold, Hold: []policy.Message{{Msg: "window freeze"}}}
		case policy.Deny:
			d = policy.Decision{Verdict: policy.Deny, Deny: []policy.Message{{Msg: "needs 2 approvals"}}}
		}
		p.Targets = append(p.Targets, rollout.Target{Cluster: c, Objects: objectsOf(revision), Hash: "hash-" + revision, Decision: d, Analyses: e.f.Gates(c)})
	}
	return p
}

// runs says, per cluster, the revision it runs and its record's status.
func (e *engineEnv) runs() map[string]string {
	out := map[string]string{}
	for name, c := range e.clusters {
		c.mu.Lock()
		status := "-"
		if c.record != nil {
			status = c.record.Status
		}
		out[name] = c.runs + " " + status
		c.mu.Unlock()
	}
	return out
}

// at sets a cluster's record as if revision had been applied there.
func (e *engineEnv) at(cluster, revision string) {
	c := e.clusters[cluster]
	c.runs = revision
	c.record = &apply.Record{Fleet: "shop", Cluster: cluster, Revision: revision, RenderHash: "hash-" + revision, Status: apply.StatusApplied,
		Inventory: []string{"v1/ConfigMap/shop/app"}}
}

func actions(out *rollout.Outcome) map[string]string {
	m := map[string]string{}
	for _, c := range out.Clusters {
		m[c.Name] = c.Action
	}
	return m
}

func TestEngineWavesInOrder(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging"), wave("main", "prod-a,prod-b"), wave("dr", "dr")})
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if err != nil || out.Result != rollout.Done {
		t.Fatalf("result %v, %v; want done", out.Result, err)
	}
	got := e.applies()
	pos := func(s string) int { return slices.Index(got, s) }
	if !(pos("staging r1") < pos("prod-a r1") && pos("staging r1") < pos("prod-b r1") && pos("prod-a r1") < pos("dr r1") && pos("prod-b r1") < pos("dr r1")) || len(got) != 4 {
		t.Errorf("applies %v, want staging, then prod-a and prod-b, then dr", got)
	}
	for name, c := range e.clusters {
		if c.record == nil || c.record.Revision != "r1" || c.record.Status != apply.StatusApplied {
			t.Errorf("cluster %s record %+v, want r1 applied", name, c.record)
		}
	}
}

func TestEngineMaxParallel(t *testing.T) {
	for _, tt := range []struct {
		max, want int
	}{{1, 1}, {2, 2}, {0, 4}} {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			e := newEngine(t, []fleet.Wave{wave("all", "a,b,c,d", maxParallel(tt.max))})
			e.hold = 20 * time.Millisecond
			if _, err := e.runner.Run(context.Background(), e.plan("r1", nil)); err != nil {
				t.Fatal(err)
			}
			if e.maxIn != tt.want {
				t.Errorf("at most %d clusters applied at once, want %d", e.maxIn, tt.want)
			}
		})
	}
}

func TestEngineBakesBetweenWavesOnly(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging", bake(time.Minute)), wave("main", "prod", bake(time.Hour))})
	if _, err := e.runner.Run(context.Background(), e.plan("r1", nil)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{time.Minute}, e.bakes); diff != "" {
		t.Errorf("bakes (-want +got):\n%s", diff)
	}
	i := slices.Index(e.events, "bake 1m0s")
	if i < 0 || slices.Index(e.events, "apply staging r1") > i || slices.Index(e.events, "apply prod r1") < i {
		t.Errorf("events %v, want the canary applied, baked, then prod", e.events)
	}
}

func TestEngineNoBakeWhenNothingChanged(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging", bake(time.Minute)), wave("main", "prod")})
	e.at("staging", "r1")
	if _, err := e.runner.Run(context.Background(), e.plan("r1", nil)); err != nil {
		t.Fatal(err)
	}
	if len(e.bakes) != 0 {
		t.Errorf("baked %v after a wave that changed nothing", e.bakes)
	}
	if diff := cmp.Diff([]string{"prod r1"}, e.applies()); diff != "" {
		t.Errorf("applies (-want +got):\n%s", diff)
	}
}

func TestEngineDenyWritesNothing(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging"), wave("main", "prod")})
	out, err := e.runner.Run(context.Background(), e.plan("r1", map[string]policy.Verdict{"prod": policy.Deny}))
	var denied *rollout.DeniedError
	if !errors.As(err, &denied) || out.Result != rollout.Denied {
		t.Fatalf("result %v, %v; want denied", out.Result, err)
	}
	if got := e.applies(); len(got) != 0 || e.clusters["staging"].writes != 0 {
		t.Errorf("applies %v and %d record writes after a deny of a later wave, want none", got, e.clusters["staging"].writes)
	}
}

func TestEngineHoldStopsAtTheWave(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging"), wave("main", "prod"), wave("dr", "dr")})
	out, err := e.runner.Run(context.Background(), e.plan("r1", map[string]policy.Verdict{"prod": policy.Hold}))
	if !errors.Is(err, rollout.ErrHeld) || out.Result != rollout.Held {
		t.Fatalf("result %v, %v; want held", out.Result, err)
	}
	want := map[string]string{"staging": rollout.ActionApplied, "prod": rollout.ActionHeld, "dr": rollout.ActionUntouched}
	if diff := cmp.Diff(want, actions(out)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

func TestEngineDryRunRejectionWritesNothing(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging"), wave("dr", "dr")})
	e.clusters["dr"].dryRunErr = errors.New(`ConfigMap "app" is invalid`)
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if err == nil || out.Result != rollout.Failed || !strings.Contains(err.Error(), "is invalid") {
		t.Fatalf("result %v, %v; want failed naming the rejection", out.Result, err)
	}
	if got := e.applies(); len(got) != 0 {
		t.Errorf("applies %v: a later wave's rejection must stop the rollout before any write", got)
	}
}

func TestEngineUnreachableClusterWritesNothing(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging"), wave("main", "prod")})
	connect := e.runner.Connect
	e.runner.Connect = func(ctx context.Context, c *fleet.Cluster) (rollout.Cluster, error) {
		if c.Name == "prod" {
			return nil, errors.New("cluster prod: connection refused")
		}
		return connect(ctx, c)
	}
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if err == nil || out.Result != rollout.Failed || len(e.applies()) != 0 {
		t.Fatalf("result %v, %v, applies %v; want failed with nothing applied", out.Result, err, e.applies())
	}
	for name, a := range actions(out) {
		if a != rollout.ActionUntouched {
			t.Errorf("cluster %s: %s, want untouched", name, a)
		}
	}
}

func TestEngineUpToDateClusterIsSkipped(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("all", "a,b")})
	e.at("a", "r1")
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if err != nil {
		t.Fatal(err)
	}
	if a := actions(out)["a"]; a != rollout.ActionSkipped || e.clusters["a"].writes != 0 || e.clusters["a"].applies != 0 {
		t.Errorf("cluster a: %s with %d writes and %d applies, want skipped with none", a, e.clusters["a"].writes, e.clusters["a"].applies)
	}
}

// A new revision that renders the same for a cluster writes only its
// record, so status and resumes see the revision.
func TestEngineSameRenderNewRevisionWritesTheRecordOnly(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("all", "a")})
	e.at("a", "r1")
	p := e.plan("r2", nil)
	p.Targets[0].Hash, p.Targets[0].Objects = "hash-r1", objectsOf("r1")
	out, err := e.runner.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	c := e.clusters["a"]
	if actions(out)["a"] != rollout.ActionSkipped || c.applies != 0 || c.writes != 1 || c.record.Revision != "r2" || c.record.PreviousRevision != "r1" {
		t.Errorf("action %s, %d applies, %d writes, record %s after %s; want skipped, a record of r2 after r1 only",
			actions(out)["a"], c.applies, c.writes, c.record.Revision, c.record.PreviousRevision)
	}
}

func TestEngineFailFastStopsLaterWaves(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging"), wave("main", "prod")})
	e.f.Rollout.RollbackOnFailure = false
	e.clusters["staging"].applyErr["r1"] = errors.New("Deployment shop/app: ProgressDeadlineExceeded")
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if err == nil || out.Result != rollout.Failed {
		t.Fatalf("result %v, %v; want failed", out.Result, err)
	}
	want := map[string]string{"staging": rollout.ActionFailed, "prod": rollout.ActionUntouched}
	if diff := cmp.Diff(want, actions(out)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

func TestEngineWithoutFailFastLaterWavesRun(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging"), wave("main", "prod")})
	e.f.Rollout.FailFast, e.f.Rollout.RollbackOnFailure = false, false
	e.clusters["staging"].applyErr["r1"] = errors.New("unhealthy")
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if err == nil || out.Result != rollout.Failed {
		t.Fatalf("result %v, %v; want failed overall", out.Result, err)
	}
	if a := actions(out)["prod"]; a != rollout.ActionApplied {
		t.Errorf("prod %s, want applied: failFast is off", a)
	}
}

func TestEngineRollsBackAFailedWave(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("main", "a,b"), wave("dr", "dr")})
	e.at("a", "r1")
	e.at("b", "r1")
	e.clusters["b"].applyErr["r2"] = errors.New("unhealthy")
	out, err := e.runner.Run(context.Background(), e.plan("r2", nil))
	if err == nil || out.Result != rollout.Failed {
		t.Fatalf("result %v, %v; want failed", out.Result, err)
	}
	want := map[string]string{"a": "r2 applied", "b": "r1 rolled-back", "dr": " -"}
	if diff := cmp.Diff(want, e.runs()); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
	if rec := e.clusters["b"].record; rec.Revision != "r1" || rec.FailedRevision != "r2" || rec.RenderHash != "hash-r1" {
		t.Errorf("b's record %+v, want r1 running, r2 failed", rec)
	}
	if diff := cmp.Diff(map[string]string{"a": rollout.ActionApplied, "b": rollout.ActionRolledBack, "dr": rollout.ActionUntouched}, actions(out)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

func TestEngineFailureWithNothingToGoBackTo(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("all", "a")})
	e.clusters["a"].applyErr["r1"] = errors.New("unhealthy")
	if _, err := e.runner.Run(context.Background(), e.plan("r1", nil)); err == nil {
		t.Fatal("want a failure")
	}
	rec := e.clusters["a"].record
	if rec == nil || rec.Status != apply.StatusFailed || rec.FailedRevision != "r1" || !slices.Contains(rec.Inventory, "v1/ConfigMap/shop/app") {
		t.Errorf("record %+v, want r1 failed, its objects owned for a later prune", rec)
	}
}

func TestEngineFailedRevisionIsNotRetried(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("all", "a")})
	e.at("a", "r1")
	e.clusters["a"].record.FailedRevision, e.clusters["a"].record.Status = "r2", apply.StatusRolledBack
	out, err := e.runner.Run(context.Background(), e.plan("r2", nil))
	if !errors.Is(err, rollout.ErrFailedBefore) || e.clusters["a"].applies != 0 {
		t.Errorf("error %v after %d applies, want ErrFailedBefore and none", err, e.clusters["a"].applies)
	}
	if a := actions(out)["a"]; a != rollout.ActionFailed {
		t.Errorf("action %s, want failed", a)
	}
}

func TestEngineRecordConflictIsNotRolledBack(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("all", "a")})
	e.at("a", "r1")
	e.clusters["a"].writeErr = fmt.Errorf("write record: %w", apply.ErrConflict)
	if _, err := e.runner.Run(context.Background(), e.plan("r2", nil)); !errors.Is(err, apply.ErrConflict) {
		t.Fatalf("error %v, want the conflict", err)
	}
	if diff := cmp.Diff([]string{"a r2"}, e.applies()); diff != "" {
		t.Errorf("applies (-want +got):\n%s (a conflict is another writer's: no rollback)", diff)
	}
}

func TestEngineSupersededBetweenWaves(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging"), wave("main", "prod")})
	e.runner.Superseded = func() (string, bool) { return "r9", true }
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if !errors.Is(err, rollout.ErrSuperseded) || out.Result != rollout.Superseded {
		t.Fatalf("result %v, %v; want superseded", out.Result, err)
	}
	if diff := cmp.Diff(map[string]string{"staging": rollout.ActionApplied, "prod": rollout.ActionUntouched}, actions(out)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

// An interrupt (SIGTERM, a lost lease) lets the cluster being applied
// finish and starts no other: never half a cluster.
func TestEngineInterruptFinishesTheClusterInFlight(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("all", "a,b", maxParallel(1))})
	ctx, cancel := context.WithCancel(context.Background())
	e.hold = 50 * time.Millisecond
	go func() {
		for len(e.applies()) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	out, err := e.runner.Run(ctx, e.plan("r1", nil))
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want the interrupt", err)
	}
	acts := actions(out)
	if acts["a"] != rollout.ActionApplied || acts["b"] != rollout.ActionUntouched || e.clusters["a"].record == nil {
		t.Errorf("actions %v (a's record %+v), want a finished and recorded, b not started", acts, e.clusters["a"].record)
	}
}

func TestEngineReconcileOnlyAtTheRevision(t *testing.T) {
	e := newEngine(t, []fleet.Wave{wave("all", "a,b,c")})
	e.at("a", "r1")
	e.at("b", "r0")
	out, err := e.runner.Reconcile(context.Background(), e.plan("r1", nil))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range out.Clusters {
		got[c.Name] = c.Action
	}
	want := map[string]string{"a": rollout.ReconcileInSync, "b": rollout.ReconcileSkipped, "c": rollout.ReconcileSkipped}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reconcile (-want +got):\n%s", diff)
	}
}
