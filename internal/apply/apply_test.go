package apply_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.SharedSpecs = []testenv.Spec{{Name: "staging"}} // one is enough here
	os.Exit(testenv.Main(m))
}

// The tests share the package's API server (testenv.Shared), one after the
// other, each in a namespace and under a fleet of its own, both named
// after the test: in the documents and the expectations below, "shop"
// stands for the test's namespace (see sub) and the applier's fleet is
// the test's name. Tests that need controllers keep a plane of their own.

// shared is the API server the package's tests share.
func shared(t *testing.T) *testenv.Cluster {
	t.Helper()
	return testenv.Shared(t).Get("staging")
}

// sub puts the test's namespace for "shop" in s.
func sub(t *testing.T, s string) string { return strings.ReplaceAll(s, "shop", testenv.Name(t)) }

// subs is sub of each of ss.
func subs(t *testing.T, ss ...string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = sub(t, s)
	}
	return out
}

// objects parses docs, in the test's namespace.
func objects(t *testing.T, docs ...string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(sub(t, d)), &u.Object); err != nil {
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
	// roleDoc is of a named API group, whose ID carries the group.
	roleDoc = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: web, namespace: shop}\nrules: []\n"
)

func applier(t *testing.T, c *testenv.Cluster) *apply.Applier {
	t.Helper()
	a, err := apply.New(c.Config, testenv.Name(t), c.Name)
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
	c := shared(t)
	a := applier(t, c)
	ctx := context.Background()
	fl := testenv.Name(t)
	opts := apply.Options{HealthTimeout: 30 * time.Second, WaitInterval: 200 * time.Millisecond}

	res, err := a.Apply(ctx, objects(t, nsDoc, cmA, cmB, cmKeep, saDoc, roleDoc), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	wantInv := subs(t, "rbac.authorization.k8s.io/v1/Role/shop/web", "v1/ConfigMap/shop/a", "v1/ConfigMap/shop/b", "v1/ConfigMap/shop/keep", "v1/Namespace//shop", "v1/ServiceAccount/shop/web")
	if diff := cmp.Diff(wantInv, res.Inventory); diff != "" {
		t.Fatalf("inventory (-want +got):\n%s", diff)
	}
	// The result names what was applied by the inventory's IDs.
	var applied []string
	for _, ch := range res.Applied {
		if ch.Action != "created" {
			t.Errorf("%s: action %s, want created", ch.ID, ch.Action)
		}
		applied = append(applied, ch.ID)
	}
	sort.Strings(applied)
	if diff := cmp.Diff(wantInv, applied); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	live := &unstructured.Unstructured{}
	live.SetAPIVersion("v1")
	live.SetKind("ConfigMap")
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: sub(t, "shop"), Name: "a"}, live); err != nil {
		t.Fatal(err)
	}
	if got := live.GetLabels(); got[apply.LabelFleet] != fl || got[apply.LabelCluster] != c.Name {
		t.Errorf("owner labels = %v, want fleet %s, cluster %s", got, fl, c.Name)
	}

	rec := &apply.Record{Fleet: fl, Cluster: c.Name, Revision: "r1", Status: apply.StatusApplied, Health: "healthy", Inventory: res.Inventory}
	if err := apply.WriteRecord(ctx, c.Client, rec); err != nil {
		t.Fatal(err)
	}
	got, err := apply.ReadRecord(ctx, c.Client, fl)
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
	got.Inventory = append(got.Inventory, sub(t, "v1/ConfigMap/shop/foreign"))

	// Revision 2 drops b, keep, the ServiceAccount and the Role.
	res, err = a.Apply(ctx, objects(t, nsDoc, cmA), got, opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(subs(t, "rbac.authorization.k8s.io/v1/Role/shop/web", "v1/ConfigMap/shop/b", "v1/ServiceAccount/shop/web"), res.Pruned); diff != "" {
		t.Errorf("pruned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(subs(t, "v1/ConfigMap/shop/foreign", "v1/ConfigMap/shop/keep"), res.Kept); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	for name, want := range map[string]bool{"a": true, "b": false, "keep": true, "foreign": true} {
		if got := exists(t, c.Client, "v1", "ConfigMap", sub(t, "shop"), name); got != want {
			t.Errorf("ConfigMap shop/%s exists = %v, want %v", name, got, want)
		}
	}
	if exists(t, c.Client, "v1", "ServiceAccount", sub(t, "shop"), "web") {
		t.Error("ServiceAccount shop/web survived the prune")
	}

	// An empty render never prunes everything by accident.
	got.Inventory = res.Inventory
	if _, err := a.Apply(ctx, nil, got, opts); err == nil || !strings.Contains(err.Error(), "--allow-empty") {
		t.Errorf("empty render: err = %v, want a refusal naming --allow-empty", err)
	}
	if !exists(t, c.Client, "v1", "ConfigMap", sub(t, "shop"), "a") {
		t.Error("refused empty render still pruned shop/a")
	}
}

// TestRecordOptimisticConcurrency: two writers that read the same record
// cannot both write it; the second fails loudly with ErrConflict.
func TestRecordOptimisticConcurrency(t *testing.T) {
	c := shared(t).Client
	ctx := context.Background()
	fl := testenv.Name(t)
	if err := apply.WriteRecord(ctx, c, &apply.Record{Fleet: fl, Cluster: "dr", Revision: "r1"}); err != nil {
		t.Fatal(err)
	}
	first, err := apply.ReadRecord(ctx, c, fl)
	if err != nil {
		t.Fatal(err)
	}
	second, err := apply.ReadRecord(ctx, c, fl)
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
	final, err := apply.ReadRecord(ctx, c, fl)
	if err != nil {
		t.Fatal(err)
	}
	if final.Revision != "r2" {
		t.Errorf("record revision = %q, want r2 (the first writer's)", final.Revision)
	}
	// A record whose creation races another creation conflicts too.
	if err := apply.WriteRecord(ctx, c, &apply.Record{Fleet: fl, Cluster: "dr", Revision: "r9"}); !errors.Is(err, apply.ErrConflict) {
		t.Errorf("blind create over an existing record: err = %v, want ErrConflict", err)
	}
}

// TestDryRunRejectsWithoutWriting: an object the API server refuses is
// named with the server's message, and no real write reaches the cluster.
func TestDryRunRejectsWithoutWriting(t *testing.T) {
	c := shared(t)
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
	unknown := "apiVersion: unknown.example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: shop}\n"
	// Only the resources of the objects: the API server's own start-up
	// creates namespaces and services of its own at an unknown moment.
	mine := []string{"configmaps", "deployments", "widgets"}
	before := requests(t, c, mine...)
	err := a.DryRun(ctx, objects(t, nsDoc, cmA, bad, unknown))
	var rej *apply.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want *RejectedError", err)
	}
	ids := []string{}
	for _, r := range rej.Rejections {
		ids = append(ids, r.ID)
	}
	if diff := cmp.Diff(subs(t, "apps/v1/Deployment/shop/broken", "unknown.example.com/v1/Widget/shop/w"), ids); diff != "" {
		t.Errorf("rejected objects (-want +got):\n%s", diff)
	}
	if msg := err.Error(); !strings.Contains(msg, "spec.replicas") || !strings.Contains(msg, sub(t, "cluster "+c.Name+": apps/v1/Deployment/shop/broken rejected")) {
		t.Errorf("message %q does not name the object and field", msg)
	}
	// Dry-runs count as APPLY: 2 of them (the namespace is dry-run with
	// the namespaces' requests), and no other request.
	if got := requests(t, c, mine...).Sub(before); got.Mutating() != 2 || got["APPLY"] != 2 {
		t.Errorf("dry-run sent %v, want the 2 dry-run APPLYs of the ConfigMap and the Deployment", got)
	}
	if exists(t, c.Client, "v1", "Namespace", "", sub(t, "shop")) {
		t.Error("the namespace was created by a dry-run")
	}
}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
`

// TestApplySendsEachObjectOnce: past the cluster definitions, Apply sends
// one request per object (the rollout dry-ran them before), reads created
// or configured from the response, still refuses before the last stage a
// custom resource of a CRD it has just created, and recreates an object
// whose immutable field changed only when it is annotated convoy.dev/force.
func TestApplySendsEachObjectOnce(t *testing.T) {
	cl := shared(t)
	a := applier(t, cl)
	ctx := context.Background()
	cms := func(v string, n int) []string {
		var docs []string
		for i := range n {
			docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d, namespace: shop}\ndata: {v: %q}\n", i, v))
		}
		return docs
	}
	widget := func(size int) string {
		return fmt.Sprintf("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: shop}\nspec: {size: %d}\n", size)
	}

	// A widget the CRD's schema refuses: nothing of the last stage is written.
	_, err := a.Apply(ctx, objects(t, append(cms("1", 5), nsDoc, widgetCRD, widget(0))...), nil, fastOpts)
	if err == nil || !strings.Contains(err.Error(), sub(t, "example.com/v1/Widget/shop/w rejected")) || !strings.Contains(err.Error(), "spec.size") {
		t.Fatalf("apply with a bad widget: %v, want the widget rejected naming spec.size", err)
	}
	if exists(t, cl.Client, "v1", "ConfigMap", sub(t, "shop"), "cm-0") {
		t.Fatal("cm-0 was written although a custom resource of the same apply was invalid")
	}

	before := requests(t, cl, "configmaps", "widgets")
	beforeCM := requests(t, cl, "configmaps")
	res, err := a.Apply(ctx, objects(t, append(cms("1", 50), nsDoc, widgetCRD, widget(3))...), nil, fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	sent := requests(t, cl, "configmaps", "widgets").Sub(before)
	// ConfigMaps are healthy once applied: the health wait does not poll them.
	if cm := requests(t, cl, "configmaps").Sub(beforeCM); cm["LIST"] != 0 || cm["APPLY"] != 50 {
		t.Errorf("ConfigMaps got %v, want 50 APPLY and no LIST", cm)
	}
	// One APPLY per ConfigMap and for the widget, plus the widget's
	// dry-run (its CRD was new); no GET. The rest is the health wait's
	// LISTs.
	if sent["APPLY"] != 52 || sent["GET"] != 0 {
		t.Errorf("cold apply of 50 ConfigMaps and a widget sent %v, want 52 APPLY (one a dry-run), no GET", sent)
	}
	actions := map[string]int{}
	for _, ch := range res.Applied {
		actions[ch.Action]++
	}
	// The namespace and the CRD were written by the refused apply: the
	// widget can only be checked once its CRD is served.
	if actions["created"] != 51 || actions["unchanged"] != 2 {
		t.Errorf("actions %v, want 51 created, 2 unchanged (namespace, CRD)", actions)
	}
	if len(res.Fingerprints) != 53 {
		t.Errorf("%d fingerprints, want one per object (53)", len(res.Fingerprints))
	}

	rec := &apply.Record{Fleet: testenv.Name(t), Cluster: a.Cluster, Revision: "r", Status: apply.StatusApplied,
		Inventory: res.Inventory, Fingerprints: res.Fingerprints, Hashes: res.Hashes}
	res, err = a.Apply(ctx, objects(t, append(append(cms("1", 49), cms("2", 50)[49]), nsDoc, widgetCRD, widget(3))...), rec, fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	actions = map[string]int{}
	for _, ch := range res.Applied {
		actions[ch.Action]++
	}
	if actions["configured"] != 1 || actions["unchanged"] != 52 {
		t.Errorf("a one-object change: actions %v, want 1 configured, 52 unchanged", actions)
	}

	// An immutable ConfigMap changes: refused without force, recreated with it.
	immutable := func(v, annotations string) []*unstructured.Unstructured {
		return objects(t, nsDoc, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: frozen, namespace: shop, annotations: {%s}}\nimmutable: true\ndata: {v: %q}\n", annotations, v))
	}
	if _, err := a.Apply(ctx, immutable("1", ""), nil, fastOpts); err != nil {
		t.Fatal(err)
	}
	_, err = a.Apply(ctx, immutable("2", ""), nil, fastOpts)
	if err == nil || !strings.Contains(err.Error(), sub(t, "ConfigMap/shop/frozen apply failed")) {
		t.Errorf("changing an immutable ConfigMap without force: %v, want it named", err)
	}
	if _, err := a.Apply(ctx, immutable("2", "convoy.dev/force: enabled"), nil, fastOpts); err != nil {
		t.Fatalf("changing an immutable ConfigMap with force: %v", err)
	}
	var frozen corev1.ConfigMap
	if err := cl.Client.Get(ctx, client.ObjectKey{Namespace: sub(t, "shop"), Name: "frozen"}, &frozen); err != nil || frozen.Data["v"] != "2" {
		t.Errorf("frozen = %v (%v), want it recreated with v=2", frozen.Data, err)
	}
}
