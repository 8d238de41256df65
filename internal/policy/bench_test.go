package policy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/policy"
)

// objects5000 is a render of 5,000 objects: Deployments, ConfigMaps, Services.
func objects5000() []*unstructured.Unstructured {
	objs := make([]*unstructured.Unstructured, 0, 5000)
	for i := range 5000 {
		name := fmt.Sprintf("app-%d", i/3)
		meta := map[string]any{"name": name, "namespace": fmt.Sprintf("team-%d", i%20)}
		var o map[string]any
		switch i % 3 {
		case 0:
			o = map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": map[string]any{
				"replicas": int64(2),
				"template": map[string]any{"spec": map[string]any{
					"initContainers": []any{map[string]any{"name": "init", "resources": map[string]any{"requests": map[string]any{"cpu": "50m"}}}},
					"containers": []any{
						map[string]any{"name": "app", "resources": map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "128Mi"}}},
						map[string]any{"name": "proxy", "resources": map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "32Mi"}, "limits": map[string]any{"memory": "64Mi"}}},
					},
				}},
			}}
		case 1:
			o = map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": map[string]any{"config.yaml": "log: info\nport: 8080\n"}}
		default:
			o = map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": map[string]any{"ports": []any{map[string]any{"port": int64(80)}}}}
		}
		objs = append(objs, &unstructured.Unstructured{Object: o})
	}
	return objs
}

func BenchmarkEvaluate5000(b *testing.B) {
	benchmarkEvaluate(b, objects5000())
}

// BenchmarkEvaluate5000DistinctRequests is the worst case of the quota
// policy's grouping of pods by shape: every Deployment requests a different
// amount of CPU.
func BenchmarkEvaluate5000DistinctRequests(b *testing.B) {
	objs := objects5000()
	for i, o := range objs {
		if o.GetKind() == "Deployment" {
			c := o.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0]
			c.(map[string]any)["resources"].(map[string]any)["requests"].(map[string]any)["cpu"] = fmt.Sprintf("%du", 100000+i) // 100m and a little
		}
	}
	benchmarkEvaluate(b, objs)
}

// BenchmarkParseInput5000 is `convoy policy eval`'s reading of an input
// document of 5,000 objects.
func BenchmarkParseInput5000(b *testing.B) {
	in := benchInput(b, objects5000())
	raw, err := json.Marshal(in)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.ParseInput("input.json", raw); err != nil {
			b.Fatal(err)
		}
	}
}

// benchInput is the input of a normal change to a cluster of testFleet with
// room for the objects.
func benchInput(b testing.TB, objs []*unstructured.Unstructured) *policy.Input {
	f := testFleet(b)
	ch := &change.Change{Revision: "abc", Category: change.Normal,
		PullRequest: &change.PullRequest{Number: 1, Author: "alice", Body: "## Rollback\nrevert\n"},
		Approvals:   []change.Approval{{User: "bob", Permission: "write", Type: change.TypeUser}}}
	c := f.Clusters[0]
	c.Capacity = map[string]resource.Quantity{"cpu": resource.MustParse("1000"), "memory": resource.MustParse("1Ti")}
	in, err := policy.BuildInput(f, &c, ch, objs, nil, time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	return in
}

func benchmarkEvaluate(b *testing.B, objs []*unstructured.Unstructured) {
	e, err := policy.New(policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput(b, objs)
	b.Run("Evaluate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d := e.Evaluate(context.Background(), in)
			if d.Verdict != policy.Allow {
				b.Fatalf("verdict = %s: %v", d.Verdict, d.Deny)
			}
		}
	})
	// The conversion alone: Evaluate's share that is not the policies'.
	b.Run("Value", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := in.Value(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The input converted once: the policies' share of Evaluate.
	b.Run("EvaluateValue", func(b *testing.B) {
		v, err := in.Value()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			d := e.EvaluateValue(context.Background(), v)
			if d.Verdict != policy.Allow {
				b.Fatalf("verdict = %s: %v", d.Verdict, d.Deny)
			}
		}
	})
}
