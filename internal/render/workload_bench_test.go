package render_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/render"
)

// BenchmarkRenderWorkload renders repositories shaped like the render
// scenario of cmd/convoy-bench (writeRenderRepo): one shared base of
// generated objects (a CRD, Namespaces, apps of a ServiceAccount, a
// ConfigMap, a Service, a Deployment and an HPA each, custom resources),
// two environment overlays that label it (templates included), four region
// components that label and annotate it, and cluster overlays that combine
// an environment and a region and add a label of their own.
func BenchmarkRenderWorkload(b *testing.B) {
	for _, bc := range []struct {
		name              string
		clusters, objects int
	}{
		{"clusters=20/objects=100", 20, 100},
		{"clusters=1/objects=1000", 1, 1000},
		{"clusters=20/objects=250", 20, 250},
		{"clusters=1/objects=5000", 1, 5000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			repo, f := workloadRepo(b, bc.clusters, bc.objects)
			var r render.Renderer
			n := 0
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				res, err := r.All(context.Background(), repo, f, nil)
				if err != nil {
					b.Fatal(err)
				}
				n = 0
				for _, x := range res {
					n += len(x.Objects)
				}
			}
			if n != bc.clusters*bc.objects {
				b.Fatalf("rendered %d objects, want %d", n, bc.clusters*bc.objects)
			}
			b.ReportMetric(float64(n), "objects/op")
			// CPU time, GC included, varies less than wall time on a shared
			// machine.
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// processCPU returns the CPU time, user and system, the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// workloadRepo writes a repository of clusters cluster overlays over a
// shared base of objects generated objects, laid out as cmd/convoy-bench's
// writeRenderRepo lays out its own, and returns it with its fleet.
func workloadRepo(tb testing.TB, clusters, objects int) (string, *fleet.Fleet) {
	tb.Helper()
	files := map[string]string{}
	for name, content := range workloadBase(tb, objects) {
		files["environments/base/"+name] = content
	}
	envs := []string{"staging", "production"}
	for _, env := range envs {
		files["environments/"+env+"/kustomization.yaml"] = fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../base\n"+
			"labels:\n- pairs:\n    environment: %s\n  includeTemplates: true\n", env)
	}
	regions := []string{"north", "east", "south", "west"}
	for _, r := range regions {
		files["regions/"+r+"/kustomization.yaml"] = fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n- pairs:\n    region: %s\n"+
			"commonAnnotations:\n  bench.convoy.dev/region: %s\n", r, r)
	}
	f := &fleet.Fleet{Name: "render-bench"}
	for i := range clusters {
		c := fmt.Sprintf("cluster-%02d", i+1)
		env, region := envs[i%len(envs)], regions[i%len(regions)]
		files["clusters/"+c+"/kustomization.yaml"] = fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../environments/%s\n"+
			"components:\n- ../../regions/%s\nlabels:\n- pairs:\n    cluster: %s\n", env, region, c)
		f.Clusters = append(f.Clusters, fleet.Cluster{Name: c, Environment: env, Region: region, Path: "clusters/" + c, Wave: "wave-1"})
	}
	return writeRepo(tb, files), f
}

// workloadBase returns the files of a kustomization holding n generated
// objects: crd.yaml, namespaces.yaml and one file per namespace.
func workloadBase(tb testing.TB, n int) map[string]string {
	tb.Helper()
	const set = "render"
	group := set + ".bench.convoy.dev"
	words := []string{"api", "auth", "billing", "cart", "catalog", "checkout", "search", "orders",
		"payments", "profile", "ledger", "gateway", "inventory", "mailer", "reports", "media"}
	rng := rand.New(rand.NewPCG(1, 0x636f6e766f79))
	meta := func(ns, name string, extra map[string]any) map[string]any {
		l := map[string]any{"bench.convoy.dev/set": set}
		for k, v := range extra {
			l[k] = v
		}
		m := map[string]any{"name": name, "labels": l}
		if ns != "" {
			m["namespace"] = ns
		}
		return m
	}
	byFile := map[string][]string{}
	add := func(file, apiVersion, kind string, body map[string]any) {
		body["apiVersion"], body["kind"] = apiVersion, kind
		b, err := yaml.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		byFile[file] = append(byFile[file], string(b))
	}
	namespaces := max(1, n/100)
	customResources := n / 50
	rest := n - namespaces - 1 - customResources
	apps, extraConfigMaps := rest/5, rest%5
	crd := "widgets." + group
	add("crd.yaml", "apiextensions.k8s.io/v1", "CustomResourceDefinition", map[string]any{
		"metadata": meta("", crd, nil),
		"spec": map[string]any{
			"group": group, "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "properties": map[string]any{
					"spec": map[string]any{"type": "object", "properties": map[string]any{
						"size": map[string]any{"type": "integer"}, "color": map[string]any{"type": "string"}, "owner": map[string]any{"type": "string"},
					}},
				}}}}},
		},
	})
	ns := make([]string, namespaces)
	for i := range ns {
		ns[i] = fmt.Sprintf("%s-ns-%02d", set, i)
		add("namespaces.yaml", "v1", "Namespace", map[string]any{"metadata": meta("", ns[i], map[string]any{"team": words[i%len(words)]})})
	}
	for i := range apps {
		ns := ns[i%len(ns)]
		file := ns + ".yaml"
		name := fmt.Sprintf("%s-%03d", words[rng.IntN(len(words))], i)
		app := map[string]any{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": set}
		port := int64(8000 + rng.IntN(1000))
		mem := fmt.Sprintf("%dMi", 64*(1+rng.IntN(8)))
		add(file, "v1", "ServiceAccount", map[string]any{"metadata": meta(ns, name, app)})
		add(file, "v1", "ConfigMap", map[string]any{
			"metadata": meta(ns, name+"-config", app),
			"data": map[string]any{
				"LOG_LEVEL":   []string{"debug", "info", "warn"}[rng.IntN(3)],
				"PORT":        fmt.Sprint(port),
				"config.yaml": fmt.Sprintf("server:\n  port: %d\n  timeout: %ds\ncache:\n  size: %d\n", port, 5+rng.IntN(55), 64<<rng.IntN(6)),
			},
		})
		add(file, "v1", "Service", map[string]any{
			"metadata": meta(ns, name, app),
			"spec": map[string]any{
				"clusterIP": "None",
				"selector":  map[string]any{"app.kubernetes.io/name": name},
				"ports":     []any{map[string]any{"name": "http", "port": int64(80), "targetPort": port, "protocol": "TCP"}},
			},
		})
		add(file, "apps/v1", "Deployment", map[string]any{
			"metadata": meta(ns, name, app),
			"spec": map[string]any{
				"replicas": int64(1 + rng.IntN(3)),
				"selector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": name}},
				"template": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": name}},
					"spec": map[string]any{
						"serviceAccountName": name,
						"containers": []any{map[string]any{
							"name": "app", "image": fmt.Sprintf("registry.example.com/%s:1.%d.%d", name, rng.IntN(20), rng.IntN(50)),
							"ports":   []any{map[string]any{"name": "http", "containerPort": port}},
							"envFrom": []any{map[string]any{"configMapRef": map[string]any{"name": name + "-config"}}},
							"resources": map[string]any{
								"requests": map[string]any{"cpu": fmt.Sprintf("%dm", 50*(1+rng.IntN(8))), "memory": mem},
								"limits":   map[string]any{"memory": mem},
							},
							"readinessProbe": map[string]any{"httpGet": map[string]any{"path": "/healthz", "port": "http"}},
						}},
					},
				},
			},
		})
		add(file, "autoscaling/v2", "HorizontalPodAutoscaler", map[string]any{
			"metadata": meta(ns, name, app),
			"spec": map[string]any{
				"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
				"minReplicas":    int64(1), "maxReplicas": int64(3 + rng.IntN(8)),
				"metrics": []any{map[string]any{"type": "Resource", "resource": map[string]any{
					"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": int64(60 + rng.IntN(30))}}}},
			},
		})
	}
	for i := range customResources {
		ns := ns[i%len(ns)]
		add(ns+".yaml", group+"/v1", "Widget", map[string]any{
			"metadata": meta(ns, fmt.Sprintf("widget-%03d", i), nil),
			"spec":     map[string]any{"size": int64(1 + rng.IntN(100)), "color": []string{"red", "green", "blue"}[rng.IntN(3)], "owner": words[rng.IntN(len(words))]},
		})
	}
	for i := range extraConfigMaps {
		ns := ns[i%len(ns)]
		add(ns+".yaml", "v1", "ConfigMap", map[string]any{"metadata": meta(ns, fmt.Sprintf("shared-%02d", i), nil), "data": map[string]any{"value": fmt.Sprint(rng.Uint32())}})
	}
	files := map[string]string{}
	names := make([]string, 0, len(byFile))
	for f, docs := range byFile {
		files[f] = strings.Join(docs, "---\n")
		names = append(names, f)
	}
	sort.Strings(names)
	files["kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + strings.Join(names, "\n- ") + "\n"
	return files
}

// TestWorkloadHashes pins the hashes of renders of the benchmark's
// repository shape, so that a faster render is also the same render.
func TestWorkloadHashes(t *testing.T) {
	got := map[string]string{}
	for _, size := range [][2]int{{4, 100}, {1, 300}} {
		repo, f := workloadRepo(t, size[0], size[1])
		var r render.Renderer
		results, err := r.All(context.Background(), repo, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range results {
			got[fmt.Sprintf("%d/%s", size[1], res.Cluster)] = res.Hash
		}
	}
	// Recorded with the render before toUnstructured (a JSON round trip
	// per object).
	want := map[string]string{
		"100/cluster-01": "33f2c59be21816c91217b54be518167ffb6d9a8c46c36004789b128db35ca4d6",
		"100/cluster-02": "b7a3a0f015be054f9d93ea40eba1244ef4e9e21c6b9721c1551e9b62adc4ab56",
		"100/cluster-03": "8005649eb93f9b4e397aee9e6d100948508ec67f01ad2622feef3e14bd6294d4",
		"100/cluster-04": "87a2e3ce6cdd89dd05831e94308da4fde7c897c55fa155d78ff757c247649c51",
		"300/cluster-01": "18cb5a3c4db3da4d2e29cfabe48c583ca955efc7de4a152e21345cd9cbb19e98",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hashes (-want +got):\n%s", diff)
	}
}
