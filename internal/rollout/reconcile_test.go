package rollout_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/rollout"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

func objects(t *testing.T, docs ...string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

// oneClusterFleet is a fleet of the test clusters, one wave.
func oneClusterFleet(cs *testenv.Clusters) (*fleet.Fleet, *rollout.Runner) {
	f := &fleet.Fleet{Name: "demo", Rollout: fleet.Rollout{HealthTimeout: 30 * time.Second, FailFast: true}}
	wave := fleet.Wave{Name: "all"}
	for _, c := range cs.Items {
		f.Clusters = append(f.Clusters, fleet.Cluster{Name: c.Name, Wave: "all"})
		wave.Clusters = append(wave.Clusters, c.Name)
	}
	f.Rollout.Waves = []fleet.Wave{wave}
	r := &rollout.Runner{
		Fleet: f,
		Connect: func(ctx context.Context, c *fleet.Cluster) (rollout.Cluster, error) {
			return apply.New(cs.Get(c.Name).Config, f.Name, c.Name)
		},
		WaitInterval: 100 * time.Millisecond,
	}
	return f, r
}

func planOf(f *fleet.Fleet, revision, hash string, objs []*unstructured.Unstructured) *rollout.Plan {
	p := &rollout.Plan{Revision: revision}
	for i := range f.Clusters {
		p.Targets = append(p.Targets, rollout.Target{Cluster: &f.Clusters[i], Objects: objs, Hash: hash,
			Decision: policy.Decision{Verdict: policy.Allow}})
	}
	return p
}

func configMap(t *testing.T, c client.Client, name string) *corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: name}, &cm); err != nil {
		t.Fatal(err)
	}
	return &cm
}

// TestReconcileCorrectsDrift: after a rollout, an unmodified cluster is in
// sync; a value edited by another field manager and an object deleted by
// hand are put back, and nothing else is re-applied; a foreign annotation is
// not drift; a cluster not at the plan's revision is left alone.
func TestReconcileCorrectsDrift(t *testing.T) {
	cs := testenv.Start(t, testenv.Spec{Name: "edge"})
	c := cs.Items[0].Client
	f, r := oneClusterFleet(cs)
	ctx := context.Background()
	objs := objects(t,
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\ndata: {k: v}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: shop}\ndata: {k: v}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {k: v}\n",
	)
	plan := planOf(f, "r1", "h1", objs)
	if _, err := r.Run(ctx, plan); err != nil {
		t.Fatal(err)
	}

	// The first check fingerprints whatever the rollout's record left
	// unverified; from then on every inventory ID has a fingerprint.
	out, err := r.Reconcile(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if a := out.Clusters[0].Action; a != rollout.ReconcileInSync && a != rollout.ReconcileCorrected {
		t.Fatalf("first reconcile: action %q (%s)", a, out.Clusters[0].Error)
	}
	rec, err := apply.ReadRecord(ctx, c, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range rec.Inventory {
		if rec.Fingerprints[id] == "" {
			t.Errorf("record has no fingerprint for %s after a reconcile", id)
		}
	}

	reconcile := func(p *rollout.Plan) rollout.ReconcileCluster {
		t.Helper()
		out, err := r.Reconcile(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Clusters) != 1 || out.Revision != p.Revision {
			t.Fatalf("outcome %+v, want revision %s and one cluster", out, p.Revision)
		}
		return out.Clusters[0]
	}
	if got := reconcile(plan); got.Action != rollout.ReconcileInSync || len(got.Drifted) != 0 {
		t.Fatalf("unmodified cluster: %+v, want in-sync", got)
	}

	edited := configMap(t, c, "a")
	edited.Data["k"] = "hand-edited"
	if err := c.Update(ctx, edited, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, configMap(t, c, "b")); err != nil {
		t.Fatal(err)
	}
	annotated := configMap(t, c, "c")
	annotated.Annotations = map[string]string{"owner": "team-x"}
	if err := c.Update(ctx, annotated, client.FieldOwner("kubectl-annotate")); err != nil {
		t.Fatal(err)
	}
	got := reconcile(plan)
	want := []string{"v1/ConfigMap/shop/a", "v1/ConfigMap/shop/b"}
	if got.Action != rollout.ReconcileCorrected {
		t.Errorf("action %q, want corrected", got.Action)
	}
	if diff := cmp.Diff(want, got.Drifted); diff != "" {
		t.Errorf("drifted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, got.Corrected); diff != "" {
		t.Errorf("corrected (-want +got):\n%s", diff)
	}
	if v := configMap(t, c, "a").Data["k"]; v != "v" {
		t.Errorf("shop/a data.k = %q, want v restored", v)
	}
	if v := configMap(t, c, "b").Data["k"]; v != "v" {
		t.Errorf("shop/b data.k = %q, want the deleted object recreated", v)
	}
	if a := configMap(t, c, "c").Annotations["owner"]; a != "team-x" {
		t.Errorf("shop/c lost the foreign annotation (%q)", a)
	}
	if got := reconcile(plan); got.Action != rollout.ReconcileInSync {
		t.Errorf("after correction: %+v, want in-sync", got)
	}

	// A plan of another revision is a rollout's job: its drift stays.
	edited = configMap(t, c, "a")
	edited.Data["k"] = "edited again"
	if err := c.Update(ctx, edited, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	got = reconcile(planOf(f, "r2", "h2", objs))
	if got.Action != rollout.ReconcileSkipped || !strings.Contains(got.Reason, "runs r1, not r2") {
		t.Errorf("cluster at r1, plan r2: %+v, want skipped naming both revisions", got)
	}
	if v := configMap(t, c, "a").Data["k"]; v != "edited again" {
		t.Errorf("shop/a data.k = %q: a skipped cluster was written", v)
	}
	// Same revision, another render (the fleet changed): also a rollout's job.
	if got := reconcile(planOf(f, "r1", "h-other", objs)); got.Action != rollout.ReconcileSkipped {
		t.Errorf("render hash changed: %+v, want skipped", got)
	}
	// A cluster that has no record yet.
	if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: apply.StateNamespace, Name: apply.RecordName("demo")}}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if got := reconcile(plan); got.Action != rollout.ReconcileSkipped || !strings.Contains(got.Reason, "no record") {
		t.Errorf("no record: %+v, want skipped", got)
	}
}

// fakeClock is the Runner's Now and Sleep: sleeping moves the clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

// TestReconcileEvery: runs happen at the schedule's times, a plan error is
// reported and the loop goes on, and the loop stops when ctx is done,
// whether between runs or while waiting.
func TestReconcileEvery(t *testing.T) {
	schedule, err := cron.ParseStandard("*/10 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 25, 10, 3, 0, 0, time.UTC)

	t.Run("fires at the cron times", func(t *testing.T) {
		clock := &fakeClock{now: start}
		r := &rollout.Runner{Fleet: &fleet.Fleet{Name: "demo"}, Now: clock.Now, Sleep: clock.Sleep}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var fired []time.Time
		var results []string
		planFn := func(context.Context) (*rollout.Plan, error) {
			fired = append(fired, clock.Now())
			if len(fired) == 2 {
				return nil, errors.New("git unreachable")
			}
			return &rollout.Plan{Revision: "r1"}, nil
		}
		onResult := func(out *rollout.ReconcileOutcome, err error) {
			switch {
			case err != nil:
				results = append(results, "error: "+err.Error())
			default:
				results = append(results, "ok: "+out.Revision)
			}
			if len(results) == 3 {
				cancel()
			}
		}
		done := make(chan struct{})
		go func() { r.ReconcileEvery(ctx, schedule, planFn, onResult); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ReconcileEvery did not return after ctx was cancelled")
		}
		wantFired := []time.Time{start.Add(7 * time.Minute), start.Add(17 * time.Minute), start.Add(27 * time.Minute)}
		if diff := cmp.Diff(wantFired, fired); diff != "" {
			t.Errorf("fire times (-want +got):\n%s", diff)
		}
		wantResults := []string{"ok: r1", "error: reconcile: plan: git unreachable", "ok: r1"}
		if diff := cmp.Diff(wantResults, results); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
	})

	t.Run("stops while waiting", func(t *testing.T) {
		waiting := make(chan time.Duration, 1)
		r := &rollout.Runner{Fleet: &fleet.Fleet{Name: "demo"}, Now: func() time.Time { return start },
			Sleep: func(ctx context.Context, d time.Duration) error {
				waiting <- d
				<-ctx.Done()
				return ctx.Err()
			}}
		ctx, cancel := context.WithCancel(context.Background())
		planned := false
		done := make(chan struct{})
		go func() {
			r.ReconcileEvery(ctx, schedule, func(context.Context) (*rollout.Plan, error) { planned = true; return &rollout.Plan{}, nil }, nil)
			close(done)
		}()
		if d := <-waiting; d != 7*time.Minute {
			t.Errorf("waits %v for the first run, want 7m (10:03 → 10:10)", d)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ReconcileEvery did not return after ctx was cancelled")
		}
		if planned {
			t.Error("a run started after ctx was cancelled")
		}
	})
}
