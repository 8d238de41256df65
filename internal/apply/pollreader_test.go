package apply

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/convoy-gitops/convoy/internal/testenv"
)

const pollDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
  annotations:
    team: shop
    kubectl.kubernetes.io/last-applied-configuration: '{"apiVersion":"apps/v1","kind":"Deployment"}'
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: registry.example.com/web:1.0}]
`

// TestPollReaderTrims lists a Deployment, as a health poll does, through
// the poller's cluster reader and checks that what kstatus is given has
// no managed fields, no last-applied annotation and no pod template, and
// still has what kstatus reads.
func TestPollReaderTrims(t *testing.T) {
	c := testenv.Shared(t).Get("staging")
	ctx := context.Background()
	dep := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(pollDeployment), &dep.Object); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Patch(ctx, dep, client.Apply, client.FieldOwner(FieldManager)); err != nil {
		t.Fatal(err)
	}

	// The live object has everything trimForPoll drops: the test would
	// pass for nothing otherwise.
	var plain unstructured.UnstructuredList
	plain.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DeploymentList"})
	if err := c.Client.List(ctx, &plain, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	if len(plain.Items) != 1 {
		t.Fatalf("listed %d Deployments, want 1", len(plain.Items))
	}
	live := plain.Items[0]
	if len(live.GetManagedFields()) == 0 || live.GetAnnotations()[lastAppliedAnnotation] == "" {
		t.Fatalf("live Deployment lacks managed fields or the last-applied annotation: %v", live.Object["metadata"])
	}
	if _, found, _ := unstructured.NestedMap(live.Object, "spec", "template"); !found {
		t.Fatal("live Deployment has no pod template")
	}

	id := object.UnstructuredToObjMetadata(dep)
	reader, err := pollReaderFactory.New(c.Client, c.Client.RESTMapper(), object.ObjMetadataSet{id})
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(dep.GroupVersionKind())
	if err := reader.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, got); err != nil {
		t.Fatal(err)
	}
	if mf := got.GetManagedFields(); len(mf) != 0 {
		t.Errorf("polled Deployment has %d managed fields entries, want none", len(mf))
	}
	if ann := got.GetAnnotations(); ann[lastAppliedAnnotation] != "" || ann["team"] != "shop" {
		t.Errorf("polled Deployment's annotations = %v, want only team: shop", ann)
	}
	if _, found, _ := unstructured.NestedMap(got.Object, "spec", "template"); found {
		t.Error("polled Deployment still has its pod template")
	}
	if r, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); r != 2 {
		t.Errorf("polled Deployment's spec.replicas = %d, want 2", r)
	}
	if sel, _, _ := unstructured.NestedStringMap(got.Object, "spec", "selector", "matchLabels"); sel["app"] != "web" {
		t.Errorf("polled Deployment's selector = %v, want app: web", sel)
	}
	if got.GetGeneration() == 0 || got.GetLabels()["app"] != "web" {
		t.Errorf("polled Deployment lost its generation or labels: %v", got.Object["metadata"])
	}

	// The ReplicaSets of the Deployment's namespace are in the poll's
	// cache too (kstatus looks for failing pods through them).
	var rsList unstructured.UnstructuredList
	rsList.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"})
	if err := reader.ListNamespaceScoped(ctx, &rsList, "default", labels.Everything()); err != nil {
		t.Errorf("the poll did not list the Deployment's ReplicaSets: %v", err)
	}
}

// TestTrimForPoll checks what is dropped by kind.
func TestTrimForPoll(t *testing.T) {
	obj := func(apiVersion, kind string) map[string]any {
		return map[string]any{
			"apiVersion": apiVersion, "kind": kind,
			"metadata": map[string]any{"name": "x", "generation": int64(3),
				"managedFields": []any{map[string]any{"manager": "convoy"}},
				"annotations":   map[string]any{lastAppliedAnnotation: "{}"}},
			"spec":   map[string]any{"replicas": int64(1), "template": map[string]any{}, "containers": []any{}},
			"status": map[string]any{"phase": "Running"},
		}
	}
	for _, tt := range []struct {
		apiVersion, kind string
		wantSpec         map[string]any
	}{
		{"apps/v1", "Deployment", map[string]any{"replicas": int64(1), "containers": []any{}}},
		{"apps/v1", "StatefulSet", map[string]any{"replicas": int64(1), "containers": []any{}}},
		{"batch/v1", "Job", map[string]any{"replicas": int64(1), "containers": []any{}}},
		{"v1", "Pod", nil},
		{"example.com/v1", "Widget", map[string]any{"replicas": int64(1), "template": map[string]any{}, "containers": []any{}}},
	} {
		o := obj(tt.apiVersion, tt.kind)
		trimForPoll(o)
		want := obj(tt.apiVersion, tt.kind)
		want["metadata"] = map[string]any{"name": "x", "generation": int64(3)}
		if tt.wantSpec == nil {
			delete(want, "spec")
		} else {
			want["spec"] = tt.wantSpec
		}
		if diff := cmp.Diff(want, o); diff != "" {
			t.Errorf("%s/%s (-want +got):\n%s", tt.apiVersion, tt.kind, diff)
		}
	}
}

// TestHealthWaitThrottledNamesUnhealthy: when client-go's rate limiter
// refuses a poll's LIST because its wait would pass the health timeout,
// the wait still ends in a timeout naming the object not yet healthy, not
// in the limiter's error. The applier's client gets one token per second
// against polls every 200 ms, so the refusal comes well before the 3 s
// timeout.
func TestHealthWaitThrottledNamesUnhealthy(t *testing.T) {
	c := testenv.Shared(t).Get("staging")
	ctx := context.Background()
	dep := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(pollDeployment), &dep.Object); err != nil {
		t.Fatal(err)
	}
	// No deployment controller runs: the Deployment stays in progress.
	if err := c.Client.Patch(ctx, dep, client.Apply, client.FieldOwner(FieldManager)); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(1, 1)
	a, err := New(cfg, testenv.Name(t), c.Name)
	if err != nil {
		t.Fatal(err)
	}
	set := object.ObjMetadataSet{object.UnstructuredToObjMetadata(dep)}
	err = a.waitHealthy(ctx, set, Options{HealthTimeout: 3 * time.Second, WaitInterval: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timeout waiting for") || !strings.Contains(err.Error(), "Deployment/default/web") {
		t.Errorf("health wait: err = %v, want a timeout naming Deployment default/web", err)
	}
}
