package apply_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/rollout"
	"github.com/convoy-gitops/convoy/internal/testenv"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Drift correction end to end: the rollout engine's Reconcile against a
// real API server. The engine's decisions are table-tested in memory in
// internal/rollout; this is the real step under them.

// oneClusterFleet is a fleet of the test's name of one cluster, c.
func oneClusterFleet(t *testing.T, c *testenv.Cluster) (*fleet.Fleet, *rollout.Runner) {
	f := &fleet.Fleet{Name: testenv.Name(t), Rollout: fleet.Rollout{HealthTimeout: 30 * time.Second, FailFast: true}}
	f.Clusters = []fleet.Cluster{{Name: c.Name, Wave: "all"}}
	f.Rollout.Waves = []fleet.Wave{{Name: "all", Clusters: []string{c.Name}}}
	r := &rollout.Runner{
		Fleet: f,
		Connect: func(ctx context.Context, fc *fleet.Cluster) (rollout.Cluster, error) {
			return apply.New(c.Config, f.Name, fc.Name)
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
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: sub(t, "shop"), Name: name}, &cm); err != nil {
		t.Fatal(err)
	}
	return &cm
}

// TestReconcileCorrectsDrift: after a rollout, an unmodified cluster is in
// sync; a value edited by another field manager and an object deleted by
// hand are put back, and nothing else is re-applied; a foreign annotation is
// not drift; a cluster not at the plan's revision is left alone.
func TestReconcileCorrectsDrift(t *testing.T) {
	cl := shared(t)
	c := cl.Client
	f, r := oneClusterFleet(t, cl)
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
	rec, err := apply.ReadRecord(ctx, c, f.Name)
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
	want := subs(t, "v1/ConfigMap/shop/a", "v1/ConfigMap/shop/b")
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
	if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: apply.StateNamespace, Name: apply.RecordName(f.Name)}}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if got := reconcile(plan); got.Action != rollout.ReconcileSkipped || !strings.Contains(got.Reason, "no record") {
		t.Errorf("no record: %+v, want skipped", got)
	}
}
