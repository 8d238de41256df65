package main

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func TestGenerateCounts(t *testing.T) {
	tests := []struct {
		n    int
		want map[string]int
	}{
		{n: 100, want: map[string]int{"CustomResourceDefinition": 1, "Namespace": 1, "Widget": 2,
			"ServiceAccount": 19, "ConfigMap": 19 + 1, "Service": 19, "Deployment": 19, "HorizontalPodAutoscaler": 19}},
		{n: 1000, want: map[string]int{"CustomResourceDefinition": 1, "Namespace": 10, "Widget": 20,
			"ServiceAccount": 193, "ConfigMap": 193 + 4, "Service": 193, "Deployment": 193, "HorizontalPodAutoscaler": 193}},
		{n: 5000, want: map[string]int{"CustomResourceDefinition": 1, "Namespace": 50, "Widget": 100,
			"ServiceAccount": 969, "ConfigMap": 969 + 4, "Service": 969, "Deployment": 969, "HorizontalPodAutoscaler": 969}},
		{n: 3, want: map[string]int{"CustomResourceDefinition": 1, "Namespace": 1, "ConfigMap": 1}},
		{n: 1, want: map[string]int{"CustomResourceDefinition": 1}},
	}
	for _, tt := range tests {
		objs := Workload{Seed: 1, Objects: tt.n, Set: "t"}.Generate()
		if len(objs) != tt.n {
			t.Errorf("Generate(%d): %d objects", tt.n, len(objs))
		}
		if diff := cmp.Diff(tt.want, CountByKind(objs)); diff != "" {
			t.Errorf("Generate(%d) kinds (-want +got):\n%s", tt.n, diff)
		}
		ids := map[string]bool{}
		for _, o := range objs {
			if ids[o.ID()] {
				t.Errorf("Generate(%d): duplicate %s", tt.n, o.ID())
			}
			ids[o.ID()] = true
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	gen := func(seed uint64) []byte {
		data, err := YAML(Workload{Seed: seed, Objects: 500, Set: "d"}.Generate())
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if diff := cmp.Diff(string(gen(7)), string(gen(7))); diff != "" {
		t.Errorf("same seed, different workloads (-first +second):\n%s", diff)
	}
	if bytes.Equal(gen(7), gen(8)) {
		t.Error("seeds 7 and 8 generated the same workload")
	}
}

func TestZeroReplicas(t *testing.T) {
	for _, o := range (Workload{Seed: 1, Objects: 200, Set: "z", ZeroReplicas: true}).Generate() {
		if o.Kind == "Deployment" && o.Body["spec"].(map[string]any)["replicas"] != int64(0) {
			t.Fatalf("%s: replicas %v, want 0", o.ID(), o.Body["spec"].(map[string]any)["replicas"])
		}
	}
}

// TestKustomizeBuilds writes a workload as a kustomization and builds it
// with kustomize's own library: every object comes out, in valid YAML.
func TestKustomizeBuilds(t *testing.T) {
	objs := Workload{Seed: 3, Objects: 1000, Set: "k"}.Generate()
	dir := t.TempDir()
	if err := WriteKustomization(dir, objs); err != nil {
		t.Fatal(err)
	}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	got := map[string]int{}
	for _, r := range resMap.Resources() {
		got[r.GetKind()]++
	}
	if diff := cmp.Diff(CountByKind(objs), got); diff != "" {
		t.Errorf("kustomize build kinds (-generated +built):\n%s", diff)
	}
	if _, err := resMap.AsYaml(); err != nil {
		t.Errorf("kustomize output as YAML: %v", err)
	}
}

func TestMutate(t *testing.T) {
	objs := Workload{Seed: 1, Objects: 1000, Set: "m"}.Generate()
	got := mutate(objs, 10)
	if len(got) != len(objs)-10 {
		t.Errorf("mutate removed %d objects, want 10", len(objs)-len(got))
	}
	modified := 0
	for _, o := range got {
		if o.Kind == "ConfigMap" {
			if d, ok := o.Body["data"].(map[string]any); ok && d["LOG_LEVEL"] == "trace" {
				modified++
			}
		}
	}
	if modified != 10 {
		t.Errorf("mutate modified %d ConfigMaps, want 10", modified)
	}
	// The input is left alone.
	for _, o := range objs {
		if d, ok := o.Body["data"].(map[string]any); ok && d["LOG_LEVEL"] == "trace" {
			t.Fatalf("mutate changed its input: %s", o.ID())
		}
	}
}
