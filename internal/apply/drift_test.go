package apply_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

const (
	svcDoc = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`
	cmC = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {k: v}\n"
)

var fastOpts = apply.Options{HealthTimeout: 60 * time.Second, WaitInterval: 200 * time.Millisecond}

// applyAndRecord applies objs as revision r1 and writes the record the way
// a rollout does, fingerprints included.
func applyAndRecord(t *testing.T, a *apply.Applier, c client.Client, objs []*unstructured.Unstructured) *apply.Record {
	t.Helper()
	ctx := context.Background()
	res, err := a.Apply(ctx, objs, nil, fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range res.Inventory {
		if len(res.Fingerprints[id]) != 16 {
			t.Fatalf("apply left %s without a fingerprint: %q", id, res.Fingerprints[id])
		}
	}
	rec := &apply.Record{Fleet: testenv.Name(t), Cluster: a.Cluster, Revision: "r1", Status: apply.StatusApplied,
		Inventory: res.Inventory, Fingerprints: res.Fingerprints}
	if err := apply.WriteRecord(ctx, c, rec); err != nil {
		t.Fatal(err)
	}
	got, err := apply.ReadRecord(ctx, c, testenv.Name(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(res.Fingerprints, got.Fingerprints); diff != "" {
		t.Fatalf("fingerprints after a record round trip (-want +got):\n%s", diff)
	}
	return got
}

func getCM(t *testing.T, c client.Client, ns, name string) *corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		t.Fatal(err)
	}
	return &cm
}

// TestDriftDetectAndCorrect: edits of fields convoy applied, by other field
// managers, and a deletion are drift and are reverted; fields convoy never
// set are not drift and survive the correction; only drifted objects are
// re-applied, and the record's fingerprints follow.
func TestDriftDetectAndCorrect(t *testing.T) {
	cl := shared(t)
	c := cl.Client
	a := applier(t, cl)
	ctx := context.Background()
	shop := sub(t, "shop")
	rec := applyAndRecord(t, a, c, objects(t, nsDoc, cmA, cmB, cmC, saDoc, svcDoc))

	drifted, err := a.Drift(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(drifted) != 0 {
		t.Fatalf("untouched cluster: drifted = %v, want none", drifted)
	}

	// Not drift: a foreign annotation and a foreign data key on b, a label
	// on the Service, and an Update that rewrites c with the same values.
	b := getCM(t, c, shop, "b")
	b.Annotations = map[string]string{"team": "payments"}
	b.Data["extra"] = "theirs"
	if err := c.Update(ctx, b, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	svcPatch := []byte(`{"metadata":{"labels":{"monitored":"yes"}}}`)
	svc := &corev1.Service{}
	svc.Namespace, svc.Name = shop, "web"
	if err := c.Patch(ctx, svc, client.RawPatch("application/merge-patch+json", svcPatch), client.FieldOwner("kubectl-label")); err != nil {
		t.Fatal(err)
	}
	same := getCM(t, c, shop, "c")
	if err := c.Update(ctx, same, client.FieldOwner("kubectl-replace")); err != nil {
		t.Fatal(err)
	}
	drifted, err = a.Drift(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(drifted) != 0 {
		t.Fatalf("only fields convoy does not manage changed: drifted = %v, want none", drifted)
	}

	// Drift: a's value edited, the Service's target port patched, the
	// ServiceAccount deleted, c's owner label removed.
	edited := getCM(t, c, shop, "a")
	edited.Data["k"] = "hand-edited"
	if err := c.Update(ctx, edited, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	portPatch := []byte(`{"spec":{"ports":[{"port":80,"targetPort":9090}]}}`)
	if err := c.Patch(ctx, svc, client.RawPatch("application/strategic-merge-patch+json", portPatch), client.FieldOwner("kubectl-patch")); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{}
	sa.Namespace, sa.Name = shop, "web"
	if err := c.Delete(ctx, sa); err != nil {
		t.Fatal(err)
	}
	unlabelled := getCM(t, c, shop, "c")
	delete(unlabelled.Labels, apply.LabelCluster)
	if err := c.Update(ctx, unlabelled, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	want := subs(t, "v1/ConfigMap/shop/a", "v1/ConfigMap/shop/c", "v1/Service/shop/web", "v1/ServiceAccount/shop/web")
	drifted, err = a.Drift(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, drifted); diff != "" {
		t.Fatalf("drifted (-want +got):\n%s", diff)
	}

	corrected, err := a.Correct(ctx, objects(t, nsDoc, cmA, cmB, cmC, saDoc, svcDoc), drifted, rec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, corrected); diff != "" {
		t.Errorf("corrected (-want +got):\n%s", diff)
	}
	if got := getCM(t, c, shop, "a").Data["k"]; got != "v" {
		t.Errorf("ConfigMap shop/a data.k = %q after correction, want v", got)
	}
	if got := getCM(t, c, shop, "c").Labels[apply.LabelCluster]; got != cl.Name {
		t.Errorf("ConfigMap shop/c cluster label = %q after correction, want %s", got, cl.Name)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
		t.Fatal(err)
	}
	if p := svc.Spec.Ports; len(p) != 1 || p[0].Port != 80 || p[0].TargetPort != intstr.FromInt32(8080) {
		t.Errorf("Service shop/web ports = %+v after correction, want 80 → 8080", p)
	}
	if !exists(t, c, "v1", "ServiceAccount", shop, "web") {
		t.Error("ServiceAccount shop/web was not recreated")
	}
	// Fields convoy never set are left alone.
	if b := getCM(t, c, shop, "b"); b.Annotations["team"] != "payments" || b.Data["extra"] != "theirs" {
		t.Errorf("ConfigMap shop/b lost foreign fields: annotations %v, data %v", b.Annotations, b.Data)
	}
	if svc.Labels["monitored"] != "yes" {
		t.Errorf("Service shop/web lost its foreign label: %v", svc.Labels)
	}

	// The record follows: a fresh read sees no drift, and the correction is noted.
	after, err := apply.ReadRecord(ctx, c, testenv.Name(t))
	if err != nil {
		t.Fatal(err)
	}
	if after.Corrected != len(want) || after.CorrectedAt.IsZero() {
		t.Errorf("record: corrected %d at %v, want %d at a time", after.Corrected, after.CorrectedAt, len(want))
	}
	drifted, err = a.Drift(ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	if len(drifted) != 0 {
		t.Errorf("after correction: drifted = %v, want none", drifted)
	}

	// A correction from a stale record does not overwrite a newer one (a
	// rollout's, here).
	after.Revision = "r2"
	if err := apply.WriteRecord(ctx, c, after); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Correct(ctx, objects(t, cmA), subs(t, "v1/ConfigMap/shop/a"), rec); !errors.Is(err, apply.ErrConflict) {
		t.Errorf("correct with a stale record: err = %v, want ErrConflict", err)
	}
}

// TestDriftUnverified: inventory IDs the record has no fingerprint for (a
// record written before fingerprints, or an edited one) are reported, so
// that they are re-applied rather than trusted.
func TestDriftUnverified(t *testing.T) {
	c := shared(t).Client
	a := applier(t, shared(t))
	ctx := context.Background()
	objs := objects(t, nsDoc, cmA, cmB)
	rec := applyAndRecord(t, a, c, objs)

	legacy := *rec
	legacy.Fingerprints = nil
	drifted, err := a.Drift(ctx, &legacy)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec.Inventory, drifted); diff != "" {
		t.Errorf("record without fingerprints: drifted (-want +got):\n%s", diff)
	}
	corrected, err := a.Correct(ctx, objs, drifted, &legacy)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec.Inventory, corrected); diff != "" {
		t.Errorf("corrected (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(rec.Fingerprints, legacy.Fingerprints); diff != "" {
		t.Errorf("re-applying unchanged objects must give the fingerprints the apply took (-want +got):\n%s", diff)
	}
}

// TestRecordFingerprintsCompressed: a large inventory's fingerprints round
// trip through the gzipped form, and fingerprints that no longer line up
// with the inventory are dropped rather than misattributed.
func TestRecordFingerprintsCompressed(t *testing.T) {
	c := shared(t).Client
	ctx := context.Background()
	fl := testenv.Name(t)
	rec := &apply.Record{Fleet: fl, Cluster: "big", Revision: "r1", Fingerprints: map[string]string{}}
	for i := range 5000 {
		id := fmt.Sprintf("v1/ConfigMap/ns-%d/cm-%d", i%10, i)
		rec.Inventory = append(rec.Inventory, id)
		if i%7 != 0 {
			rec.Fingerprints[id] = fmt.Sprintf("%016x", i*7919)
		}
	}
	if err := apply.WriteRecord(ctx, c, rec); err != nil {
		t.Fatal(err)
	}
	cm := getCM(t, c, apply.StateNamespace, apply.RecordName(fl))
	if _, ok := cm.BinaryData["fingerprints.gz"]; !ok {
		t.Errorf("5,000 fingerprints stored inline (keys %v), want fingerprints.gz", keys(cm))
	}
	got, err := apply.ReadRecord(ctx, c, fl)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec.Fingerprints, got.Fingerprints); diff != "" {
		t.Errorf("fingerprints (-want +got):\n%s", diff)
	}

	// Someone trims the inventory by hand: the fingerprints no longer line up.
	cm.BinaryData["inventory.gz"] = nil
	delete(cm.BinaryData, "inventory.gz")
	cm.Data["inventory"] = strings.Join(rec.Inventory[1:], "\n")
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	got, err = apply.ReadRecord(ctx, c, fl)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Inventory) != 4999 || got.Fingerprints != nil {
		t.Errorf("misaligned record: %d IDs, %d fingerprints; want 4999 IDs, fingerprints dropped", len(got.Inventory), len(got.Fingerprints))
	}
}

func keys(cm *corev1.ConfigMap) []string {
	var out []string
	for k := range cm.Data {
		out = append(out, k)
	}
	for k := range cm.BinaryData {
		out = append(out, k+" (binary)")
	}
	return out
}

// requests sums the API server's request counts for the given resources:
// the ones a drift check touches. Counting by resource leaves out the API
// server's own timer writes and the client's discovery.
func requests(t *testing.T, c *testenv.Cluster, resources ...string) testenv.Requests {
	t.Helper()
	sum := testenv.Requests{}
	for _, r := range resources {
		got, err := c.RequestCounts(context.Background(), map[string]string{"resource": r})
		if err != nil {
			t.Fatal(err)
		}
		for verb, n := range got {
			sum[verb] += n
		}
	}
	return sum
}

// TestDriftRequestCount: a drift check of 1,000 objects costs one LIST per
// kind (paged), not a GET and a dry-run per object as Flux's does;
// correcting 10 drifted objects adds one apply each and the record write.
func TestDriftRequestCount(t *testing.T) {
	if testing.Short() {
		t.Skip("applies 1,000 objects")
	}
	cs := testenv.Start(t, testenv.Spec{Name: "count"})
	cl := cs.Items[0]
	c := cl.Client
	a := applier(t, cl)
	ctx := context.Background()

	const namespaces, perNS = 10, 100 // 80 ConfigMaps, 10 Services, 10 ServiceAccounts each
	var docs []string
	for n := range namespaces {
		ns := fmt.Sprintf("team-%d", n)
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", ns))
		for i := range perNS {
			switch {
			case i < 80:
				docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d, namespace: %s}\ndata: {k: v%d}\n", i, ns, i))
			case i < 90:
				docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: svc-%d, namespace: %s}\nspec: {selector: {app: a%d}, ports: [{port: 80, targetPort: 8080}]}\n", i, ns, i))
			default:
				docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa-%d, namespace: %s}\n", i, ns))
			}
		}
	}
	objs := objects(t, docs...)
	rec := applyAndRecord(t, a, c, objs)
	if len(rec.Inventory) != namespaces*perNS+namespaces {
		t.Fatalf("inventory holds %d objects, want %d", len(rec.Inventory), namespaces*perNS+namespaces)
	}
	lists := 4 // ConfigMap, Service, ServiceAccount across namespaces (pages of 2,000), and Namespace
	touched := []string{"configmaps", "services", "serviceaccounts", "namespaces"}

	before := requests(t, cl, touched...)
	drifted, err := a.Drift(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	noop := requests(t, cl, touched...).Sub(before)
	if len(drifted) != 0 {
		t.Fatalf("untouched cluster: drifted = %v", drifted)
	}
	if noop.Total() > lists || noop.Total() > 10 || noop.Mutating() != 0 {
		t.Errorf("no-op drift check of %d objects: %v requests (%d), want ≤ %d and no writes", len(rec.Inventory), noop, noop.Total(), lists)
	}
	t.Logf("no-op drift check of %d objects with %d lists: %d requests %v; Flux's GET + dry-run per object: %d",
		len(rec.Inventory), lists, noop.Total(), noop, 2*len(rec.Inventory))

	// Ten objects drift: 6 values edited, 2 deleted, 2 Services' target ports patched.
	var want []string
	for n := range 6 {
		cm := getCM(t, c, fmt.Sprintf("team-%d", n), "cm-1")
		cm.Data["k"] = "edited"
		if err := c.Update(ctx, cm, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("v1/ConfigMap/team-%d/cm-1", n))
	}
	for n := 6; n < 8; n++ {
		cm := &corev1.ConfigMap{}
		cm.Namespace, cm.Name = fmt.Sprintf("team-%d", n), "cm-2"
		if err := c.Delete(ctx, cm); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("v1/ConfigMap/team-%d/cm-2", n))
	}
	for n := 8; n < 10; n++ {
		svc := &corev1.Service{}
		svc.Namespace, svc.Name = fmt.Sprintf("team-%d", n), "svc-85"
		patch := client.RawPatch("application/strategic-merge-patch+json", []byte(`{"spec":{"ports":[{"port":80,"targetPort":9090}]}}`))
		if err := c.Patch(ctx, svc, patch, client.FieldOwner("kubectl-patch")); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("v1/Service/team-%d/svc-85", n))
	}

	before = requests(t, cl, touched...)
	drifted, err = a.Drift(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	corrected, err := a.Correct(ctx, objs, drifted, rec)
	if err != nil {
		t.Fatal(err)
	}
	fix := requests(t, cl, touched...).Sub(before)
	if diff := cmp.Diff(want, corrected); diff != "" {
		t.Errorf("corrected (-want +got):\n%s", diff)
	}
	// Lists, one apply per drifted object, and the record write (with the
	// namespace create that WriteRecord makes sure of).
	if limit := lists + len(want) + 2 + 2; fix.Total() > limit || fix["APPLY"] != len(want) {
		t.Errorf("check + correction of %d drifted objects: %v (%d requests), want ≤ %d with %d APPLY", len(want), fix, fix.Total(), limit, len(want))
	}
	t.Logf("drift check + correction of %d drifted objects: %d requests %v", len(want), fix.Total(), fix)

	drifted, err = a.Drift(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(drifted) != 0 {
		t.Errorf("after correction: drifted = %v, want none", drifted)
	}
}

// TestApplySendsOnlyWhatChanged: with a record of the last apply, a new
// render of 200 objects where 2 changed and 2 were removed sends those 2 and
// the object someone edited by hand — not the other 195 — and the record's
// hashes make the next identical apply send nothing.
func TestApplySendsOnlyWhatChanged(t *testing.T) {
	cl := shared(t)
	c := cl.Client
	a := applier(t, cl)
	ctx := context.Background()

	render := func(version func(i int) int) []*unstructured.Unstructured {
		var docs []string
		for i := range 200 {
			if v := version(i); v > 0 {
				docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d, namespace: default}\ndata: {v: \"%d\"}\n", i, v))
			}
		}
		return objects(t, docs...)
	}
	record := func(res *apply.Result) *apply.Record {
		return &apply.Record{Fleet: testenv.Name(t), Cluster: a.Cluster, Revision: "r", Status: apply.StatusApplied,
			Inventory: res.Inventory, Fingerprints: res.Fingerprints, Hashes: res.Hashes}
	}
	res, err := a.Apply(ctx, render(func(int) int { return 1 }), nil, fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(res)

	// Someone edits cm-7 by hand; cm-0 and cm-1 change; cm-198 and cm-199 go.
	var cm7 corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "cm-7"}, &cm7); err != nil {
		t.Fatal(err)
	}
	cm7.Data["v"] = "edited"
	if err := c.Update(ctx, &cm7, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	next := render(func(i int) int {
		switch {
		case i < 2:
			return 2
		case i >= 198:
			return 0
		}
		return 1
	})
	if got := len(a.Changed(next, rec)); got != 2 {
		t.Errorf("Changed = %d objects, want the 2 whose content changed", got)
	}
	before := requests(t, cl, "configmaps")
	res, err = a.Apply(ctx, next, rec, fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	sent := requests(t, cl, "configmaps").Sub(before)
	// cm-0, cm-1 and the edited cm-7: one APPLY each, the fingerprint
	// coming back in its response (the rollout dry-runs before Apply); a
	// GET and a DELETE per pruned object; the drift check's LIST. Not 200
	// of anything.
	if limit := 3 + 2*2 + 2; sent["APPLY"] != 3 || sent["DELETE"] != 2 || sent.Total() > limit {
		t.Errorf("apply of a 2-object change: %v (%d requests), want 3 APPLY, 2 DELETE, ≤ %d in all", sent, sent.Total(), limit)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "cm-7"}, &cm7); err != nil || cm7.Data["v"] != "1" {
		t.Errorf("cm-7 = %v (%v), want the hand edit reverted to 1", cm7.Data, err)
	}
	var unchanged int
	for _, ch := range res.Applied {
		if ch.Action == "unchanged" {
			unchanged++
		}
	}
	if unchanged != 195 || len(res.Inventory) != 198 {
		t.Errorf("result: %d unchanged, inventory %d; want 195 unchanged of 198", unchanged, len(res.Inventory))
	}

	before = requests(t, cl, "configmaps")
	if _, err := a.Apply(ctx, next, record(res), fastOpts); err != nil {
		t.Fatal(err)
	}
	if sent := requests(t, cl, "configmaps").Sub(before); sent.Mutating() != 0 || sent.Total() > 4 {
		t.Errorf("identical re-apply sent %v, want only the LISTs", sent)
	}
}
