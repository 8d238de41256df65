package apply_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/convoy-gitops/convoy/internal/apply"
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

const (
	nsDoc  = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
	cmA    = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\ndata: {k: v}\n"
	cmB    = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: shop}\ndata: {k: v}\n"
	cmKeep = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep, namespace: shop, annotations: {convoy.dev/prune: disabled}}\ndata: {k: v}\n"
	saDoc  = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web, namespace: shop}\n"
)

func applier(t *testing.T, c *testenv.Cluster) *apply.Applier {
	t.Helper()
	a, err := apply.New(c.Config, "demo", c.Name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func exists(t *testing.T, c client.Client, apiVersion, kind, ns, name string) bool {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// TestApplyPruneAndRecord walks one cluster through the life of a revision:
// apply with owner labels, a record round trip, a prune that spares
// prune-disabled and foreign objects, and the refusal of an empty render.
func TestApplyPruneAndRecord(t *testing.T) {
	cs := testenv.Start(t, testenv.Spec{Name: "edge"})
	c := cs.Items[0]
	a := applier(t, c)
	ctx := context.Background()
	opts := apply.Options{HealthTimeout: 30 * time.Second, WaitInterval: 200 * time.Millisecond}

	res, err := a.Apply(ctx, objects(t, nsDoc, cmA, cmB, cmKeep, saDoc), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	wantInv := []string{"v1/ConfigMap/shop/a", "v1/ConfigMap/shop/b", "v1/ConfigMap/shop/keep", "v1/Namespace//shop", "v1/ServiceAccount/shop/web"}
	if diff := cmp.Diff(wantInv, res.Inventory); diff != "" {
		t.Fatalf("inventory (-want +got):\n%s", diff)
	}
	live := &unstructured.Unstructured{}
	live.SetAPIVersion("v1")
	live.SetKind("ConfigMap")
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "a"}, live); err != nil {
		t.Fatal(err)
	}
	if got := live.GetLabels(); got[apply.LabelFleet] != "demo" || got[apply.LabelCluster] != "edge" {
		t.Errorf("owner labels = %v, want fleet demo, cluster edge", got)
	}

	rec := &apply.Record{Fleet: "demo", Cluster: "edge", Revision: "r1", Status: apply.StatusApplied, Health: "healthy", Inventory: res.Inventory}
	if err := apply.WriteRecord(ctx, c.Client, rec); err != nil {
		t.Fatal(err)
	}
	got, err := apply.ReadRecord(ctx, c.Client, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec.Inventory, got.Inventory); diff != "" || got.Revision != "r1" {
		t.Fatalf("record round trip: revision %q, inventory (-want +got):\n%s", got.Revision, diff)
	}

	// A foreign object with the name of a managed one, in the inventory by
	// a bug or an old record, must survive the prune: it lacks our labels.
	foreign := objects(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: foreign, namespace: shop}\n")[0]
	if err := c.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	got.Inventory = append(got.Inventory, "v1/ConfigMap/shop/foreign")

	// Revision 2 drops b, keep and the ServiceAccount.
	res, err = a.Apply(ctx, objects(t, nsDoc, cmA), got, opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"v1/ConfigMap/shop/b", "v1/ServiceAccount/shop/web"}, res.Pruned); diff != "" {
		t.Errorf("pruned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"v1/ConfigMap/shop/foreign", "v1/ConfigMap/shop/keep"}, res.Kept); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	for name, want := range map[string]bool{"a": true, "b": false, "keep": true, "foreign": true} {
		if got := exists(t, c.Client, "v1", "ConfigMap", "shop", name); got != want {
			t.Errorf("ConfigMap shop/%s exists = %v, want %v", name, got, want)
		}
	}
	if exists(t, c.Client, "v1", "ServiceAccount", "shop", "web") {
		t.Error("ServiceAccount shop/web survived the prune")
	}

	// An empty render never prunes everything by accident.
	got.Inventory = res.Inventory
	if _, err := a.Apply(ctx, nil, got, opts); err == nil || !strings.Contains(err.Error(), "--allow-empty") {
		t.Errorf("empty render: err = %v, want a refusal naming --allow-empty", err)
	}
	if !exists(t, c.Client, "v1", "ConfigMap", "shop", "a") {
		t.Error("refused empty render still pruned shop/a")
	}
}

// TestRecordOptimisticConcurrency: two writers that read the same record
// cannot both write it; the second fails loudly with ErrConflict.
func TestRecordOptimisticConcurrency(t *testing.T) {
	cs := testenv.Start(t, testenv.Spec{Name: "dr"})
	c := cs.Items[0].Client
	ctx := context.Background()
	if err := apply.WriteRecord(ctx, c, &apply.Record{Fleet: "demo", Cluster: "dr", Revision: "r1"}); err != nil {
		t.Fatal(err)
	}
	first, err := apply.ReadRecord(ctx, c, "demo")
	if err != nil {
		t.Fatal(err)
	}
	second, err := apply.ReadRecord(ctx, c, "demo")
	if err != nil {
		t.Fatal(err)
	}
	first.Revision = "r2"
	if err := apply.WriteRecord(ctx, c, first); err != nil {
		t.Fatal(err)
	}
	second.Revision = "r3"
	if err := apply.WriteRecord(ctx, c, second); !errors.Is(err, apply.ErrConflict) {
		t.Fatalf("second writer: err = %v, want ErrConflict", err)
	}
	final, err := apply.ReadRecord(ctx, c, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if final.Revision != "r2" {
		t.Errorf("record revision = %q, want r2 (the first writer's)", final.Revision)
	}
	// A record whose creation races another creation conflicts too.
	if err := apply.WriteRecord(ctx, c, &apply.Record{Fleet: "demo", Cluster: "dr", Revision: "r9"}); !errors.Is(err, apply.ErrConflict) {
		t.Errorf("blind create over an existing record: err = %v, want ErrConflict", err)
	}
}

// TestDryRunRejectsWithoutWriting: an object the API server refuses is
// named with the server's message, and no real write reaches the cluster.
func TestDryRunRejectsWithoutWriting(t *testing.T) {
	cs := testenv.Start(t, testenv.Spec{Name: "prod"})
	c := cs.Items[0]
	a := applier(t, c)
	ctx := context.Background()
	bad := `apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: shop}
spec:
  replicas: -3
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: x, image: nginx}]
`
	unknown := "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: shop}\n"
	before, err := c.RequestCounts(ctx, map[string]string{"dry_run": ""}, apiServerOwn...)
	if err != nil {
		t.Fatal(err)
	}
	err = a.DryRun(ctx, objects(t, nsDoc, cmA, bad, unknown))
	var rej *apply.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want *RejectedError", err)
	}
	ids := []string{}
	for _, r := range rej.Rejections {
		ids = append(ids, r.ID)
	}
	if diff := cmp.Diff([]string{"apps/v1/Deployment/shop/broken", "example.com/v1/Widget/shop/w"}, ids); diff != "" {
		t.Errorf("rejected objects (-want +got):\n%s", diff)
	}
	if msg := err.Error(); !strings.Contains(msg, "spec.replicas") || !strings.Contains(msg, "cluster prod: apps/v1/Deployment/shop/broken rejected") {
		t.Errorf("message %q does not name the object and field", msg)
	}
	after, err := c.RequestCounts(ctx, map[string]string{"dry_run": ""}, apiServerOwn...)
	if err != nil {
		t.Fatal(err)
	}
	if n := after.Sub(before).Mutating(); n != 0 {
		t.Errorf("dry-run made %d real writes: %v", n, after.Sub(before))
	}
	if exists(t, c.Client, "v1", "Namespace", "", "shop") {
		t.Error("namespace shop was created by a dry-run")
	}
}

// apiServerOwn are the resources the API server itself writes on a timer
// (its identity lease, the kubernetes Service's endpoints): not writes of
// the code under test.
var apiServerOwn = []string{"leases", "endpoints", "endpointslices", "events"}
