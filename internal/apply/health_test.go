package apply_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// deployment returns a Deployment of shop whose pods need a node that does
// not exist, so it never becomes Available; deadline is its
// progressDeadlineSeconds.
func deployment(name, deadline string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `, namespace: shop}
spec:
  replicas: 1
  progressDeadlineSeconds: ` + deadline + `
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      nodeSelector: {convoy.dev/no-such-node: "true"}
      containers: [{name: app, image: registry.example/app:1}]
`
}

// TestHealthWaitEndsAtFirstFailure: on a cluster whose deployment
// controller runs, with Options.FailFast (a forward rollout), a Deployment
// past its progress deadline (kstatus Failed) ends the health wait
// although another Deployment is still in progress, with an error naming
// the failed one; the wait does not run to its timeout, after which the
// error would say "timeout".
func TestHealthWaitEndsAtFirstFailure(t *testing.T) {
	cs := testenv.Start(t, testenv.Spec{Name: "edge", Flavour: testenv.Full})
	a := applier(t, cs.Items[0])
	ctx := context.Background()

	objs := objects(t, nsDoc, deployment("stuck", "1"), deployment("pending", "600"))
	_, err := a.Apply(ctx, objs, nil, apply.Options{HealthTimeout: 3 * time.Minute, WaitInterval: time.Second, FailFast: true})
	var ue *apply.UnhealthyError
	if !errors.As(err, &ue) {
		t.Fatalf("apply: err = %v, want an UnhealthyError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "failed early") || !strings.Contains(msg, sub(t, "Deployment/shop/stuck status: 'Failed'")) {
		t.Errorf("err = %q, want the wait ended early by Deployment shop/stuck's failure", msg)
	}
	if strings.Contains(msg, "timeout") || strings.Contains(msg, "pending") {
		t.Errorf("err = %q, want neither a timeout nor the Deployment still in progress", msg)
	}
}

// TestHealthWaitOutlivesFailedPolls: polls that fail while the API server
// cannot be reached do not end the health wait (its verdict would be the
// failed poll, on a set whose health is unknown): it looks again until its
// timeout, and the error then names the object still unhealthy.
func TestHealthWaitOutlivesFailedPolls(t *testing.T) {
	c := shared(t)
	proxy := testenv.NewAPIProxy(t, c)
	a, err := apply.New(proxy.Config, testenv.Name(t), c.Name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Once the Deployment is applied (the health wait begins), the API
	// server is out of reach for 1.5 s, three poll intervals.
	outage := make(chan error, 1)
	go func() {
		dep := &unstructured.Unstructured{}
		dep.SetAPIVersion("apps/v1")
		dep.SetKind("Deployment")
		for c.Client.Get(ctx, client.ObjectKey{Namespace: sub(t, "shop"), Name: "stuck"}, dep) != nil {
			if ctx.Err() != nil {
				outage <- ctx.Err()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		proxy.Down()
		time.Sleep(1500 * time.Millisecond)
		outage <- proxy.Up()
	}()

	// No deployment controller runs: the Deployment stays in progress.
	objs := objects(t, nsDoc, deployment("stuck", "600"))
	start := time.Now()
	_, err = a.Apply(ctx, objs, nil, apply.Options{HealthTimeout: 4 * time.Second, WaitInterval: 500 * time.Millisecond})
	took := time.Since(start)
	if oerr := <-outage; oerr != nil {
		t.Fatalf("outage: %v", oerr)
	}
	var ue *apply.UnhealthyError
	if !errors.As(err, &ue) {
		t.Fatalf("apply: err = %v, want an UnhealthyError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "timeout waiting for") || !strings.Contains(msg, sub(t, "Deployment/shop/stuck")) {
		t.Errorf("err = %q, want a timeout naming Deployment shop/stuck", msg)
	}
	if took < 4*time.Second {
		t.Errorf("the health wait ended after %s, before its 4s timeout", took.Round(time.Millisecond))
	}
}

// TestHealthIsOfTheNewRevision: a Deployment whose status still says
// Available for its previous spec (observedGeneration behind generation,
// no controller to catch up) is not healthy after the new revision is
// applied: health is judged on what was just applied, never on the
// previous revision's status (the class of bug of Argo CD's issue 29410).
// The same status with the spec unchanged is healthy, so the status the
// test writes is one kstatus accepts.
func TestHealthIsOfTheNewRevision(t *testing.T) {
	c := shared(t)
	a := applier(t, c)
	ctx := context.Background()
	dep := func(image string) string {
		return sub(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: registry.example/web:`+image+`}]
`)
	}
	opts := apply.Options{HealthTimeout: 3 * time.Second, WaitInterval: 200 * time.Millisecond}
	// Version 1, then the status a deployment controller would write for it.
	if _, err := a.Apply(ctx, objects(t, nsDoc, dep("1")), nil, apply.Options{HealthTimeout: time.Second, WaitInterval: 200 * time.Millisecond}); err == nil {
		t.Fatal("version 1 was healthy before any status was written")
	}
	live := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: sub(t, "shop"), Name: "web"}
	if err := c.Client.Get(ctx, key, live); err != nil {
		t.Fatal(err)
	}
	live.Status = appsv1.DeploymentStatus{ObservedGeneration: live.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
		}}
	if err := c.Client.Status().Update(ctx, live); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, objects(t, nsDoc, dep("1")), nil, opts); err != nil {
		t.Fatalf("version 1 with its status: %v, want healthy", err)
	}
	// Version 2: the spec changes, the status is still version 1's.
	_, err := a.Apply(ctx, objects(t, nsDoc, dep("2")), nil, opts)
	var ue *apply.UnhealthyError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), sub(t, "Deployment/shop/web")) {
		t.Fatalf("version 2 under version 1's Available status: %v, want unhealthy naming the Deployment", err)
	}
}
