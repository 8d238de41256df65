package apply_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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
	if !strings.Contains(msg, "failed early") || !strings.Contains(msg, "Deployment/shop/stuck status: 'Failed'") {
		t.Errorf("err = %q, want the wait ended early by Deployment shop/stuck's failure", msg)
	}
	if strings.Contains(msg, "timeout") || strings.Contains(msg, "pending") {
		t.Errorf("err = %q, want neither a timeout nor the Deployment still in progress", msg)
	}
}
