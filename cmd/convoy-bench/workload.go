package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Workload describes the synthetic objects of one cluster: apps shaped like
// real ones (Deployment, Service, ConfigMap, ServiceAccount and
// HorizontalPodAutoscaler each), spread over namespaces, plus one
// CustomResourceDefinition and custom resources of it. The same Workload
// always generates the same objects.
type Workload struct {
	Seed    uint64
	Objects int // exact number of objects generated
	// Set names this instance: it prefixes the namespaces and the CRD's
	// group and is the value of the label LabelSet on every object, so that
	// several instances live side by side in one cluster.
	Set string
	// ZeroReplicas scales every Deployment to zero, so that it becomes
	// Available with the deployment controller alone (no scheduler, no
	// nodes); the HPA's minReplicas does not apply to a target at zero.
	ZeroReplicas bool
}

// LabelSet is carried by every generated object, with the Workload's Set.
const LabelSet = "bench.convoy.dev/set"

// Object is one generated object.
type Object struct {
	APIVersion, Kind, Namespace, Name string
	Body                              map[string]any
}

// ID is group/version/kind/namespace/name, unique within a workload.
func (o Object) ID() string {
	return o.APIVersion + "/" + o.Kind + "/" + o.Namespace + "/" + o.Name
}

// Shape is how many objects of each part a Workload of n objects has.
type Shape struct {
	Namespaces, Apps, CustomResources, ExtraConfigMaps int
}

// ShapeOf spreads n objects: a namespace per 100 objects (at least one),
// one CRD, a custom resource per 50 objects, five objects per app, and
// ConfigMaps for the remainder so that the total is exactly n.
func ShapeOf(n int) Shape {
	s := Shape{Namespaces: max(1, n/100), CustomResources: n / 50}
	rest := n - s.Namespaces - 1 - s.CustomResources
	if rest < 0 {
		return Shape{Namespaces: max(0, n-1)} // tiny n: namespaces and the CRD only
	}
	s.Apps = rest / 5
	s.ExtraConfigMaps = rest - 5*s.Apps
	return s
}

// Group is the API group of the workload's CRD.
func (w Workload) Group() string { return w.Set + ".bench.convoy.dev" }

// CRDName is the name of the workload's CRD.
func (w Workload) CRDName() string { return "widgets." + w.Group() }

var words = []string{"api", "auth", "billing", "cart", "catalog", "checkout", "search", "orders",
	"payments", "profile", "ledger", "gateway", "inventory", "mailer", "reports", "media"}

// Generate returns the workload's objects: the CRD and the namespaces
// first, then each namespace's objects.
func (w Workload) Generate() []Object {
	rng := rand.New(rand.NewPCG(w.Seed, 0x636f6e766f79))
	shape := ShapeOf(w.Objects)
	labels := func(extra map[string]any) map[string]any {
		l := map[string]any{LabelSet: w.Set}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}
	meta := func(ns, name string, extra map[string]any) map[string]any {
		m := map[string]any{"name": name, "labels": labels(extra)}
		if ns != "" {
			m["namespace"] = ns
		}
		return m
	}
	var out []Object
	add := func(apiVersion, kind, ns, name string, body map[string]any) {
		body["apiVersion"], body["kind"] = apiVersion, kind
		out = append(out, Object{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name, Body: body})
	}
	if w.Objects > 0 {
		add("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", w.CRDName(), map[string]any{
			"metadata": meta("", w.CRDName(), nil),
			"spec": map[string]any{
				"group": w.Group(), "scope": "Namespaced",
				"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
				"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "properties": map[string]any{
						"spec": map[string]any{"type": "object", "properties": map[string]any{
							"size":  map[string]any{"type": "integer"},
							"color": map[string]any{"type": "string"},
							"owner": map[string]any{"type": "string"},
						}},
					}}}}},
			},
		})
	}
	namespaces := make([]string, shape.Namespaces)
	for i := range namespaces {
		namespaces[i] = fmt.Sprintf("%s-ns-%02d", w.Set, i)
		add("v1", "Namespace", "", namespaces[i], map[string]any{"metadata": meta("", namespaces[i], map[string]any{"team": words[i%len(words)]})})
	}
	if len(namespaces) == 0 {
		return out
	}
	for i := range shape.Apps {
		ns := namespaces[i%len(namespaces)]
		name := fmt.Sprintf("%s-%03d", words[rng.IntN(len(words))], i)
		app := map[string]any{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": w.Set}
		replicas := int64(1 + rng.IntN(3))
		if w.ZeroReplicas {
			replicas = 0
		}
		port := int64(8000 + rng.IntN(1000))
		cpu := fmt.Sprintf("%dm", 50*(1+rng.IntN(8)))
		mem := fmt.Sprintf("%dMi", 64*(1+rng.IntN(8)))
		image := fmt.Sprintf("registry.example.com/%s:1.%d.%d", name, rng.IntN(20), rng.IntN(50))
		add("v1", "ServiceAccount", ns, name, map[string]any{"metadata": meta(ns, name, app)})
		add("v1", "ConfigMap", ns, name+"-config", map[string]any{
			"metadata": meta(ns, name+"-config", app),
			"data": map[string]any{
				"LOG_LEVEL":   []string{"debug", "info", "warn"}[rng.IntN(3)],
				"PORT":        fmt.Sprint(port),
				"config.yaml": fmt.Sprintf("server:\n  port: %d\n  timeout: %ds\ncache:\n  size: %d\n", port, 5+rng.IntN(55), 64<<rng.IntN(6)),
			},
		})
		add("v1", "Service", ns, name, map[string]any{
			"metadata": meta(ns, name, app),
			"spec": map[string]any{
				// Headless: the test API servers' service IP range is a /24,
				// too small for thousands of Services.
				"clusterIP": "None",
				"selector":  map[string]any{"app.kubernetes.io/name": name},
				"ports":     []any{map[string]any{"name": "http", "port": int64(80), "targetPort": port, "protocol": "TCP"}},
			},
		})
		add("apps/v1", "Deployment", ns, name, map[string]any{
			"metadata": meta(ns, name, app),
			"spec": map[string]any{
				"replicas": replicas,
				"selector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": name}},
				"template": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": name}},
					"spec": map[string]any{
						"serviceAccountName": name,
						"containers": []any{map[string]any{
							"name": "app", "image": image,
							"ports":   []any{map[string]any{"name": "http", "containerPort": port}},
							"envFrom": []any{map[string]any{"configMapRef": map[string]any{"name": name + "-config"}}},
							"resources": map[string]any{
								"requests": map[string]any{"cpu": cpu, "memory": mem},
								"limits":   map[string]any{"memory": mem},
							},
							"readinessProbe": map[string]any{"httpGet": map[string]any{"path": "/healthz", "port": "http"}},
						}},
					},
				},
			},
		})
		add("autoscaling/v2", "HorizontalPodAutoscaler", ns, name, map[string]any{
			"metadata": meta(ns, name, app),
			"spec": map[string]any{
				"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
				"minReplicas":    int64(1), "maxReplicas": int64(3 + rng.IntN(8)),
				"metrics": []any{map[string]any{"type": "Resource", "resource": map[string]any{
					"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": int64(60 + rng.IntN(30))}}}},
			},
		})
	}
	for i := range shape.CustomResources {
		ns := namespaces[i%len(namespaces)]
		name := fmt.Sprintf("widget-%03d", i)
		add(w.Group()+"/v1", "Widget", ns, name, map[string]any{
			"metadata": meta(ns, name, nil),
			"spec":     map[string]any{"size": int64(1 + rng.IntN(100)), "color": []string{"red", "green", "blue"}[rng.IntN(3)], "owner": words[rng.IntN(len(words))]},
		})
	}
	for i := range shape.ExtraConfigMaps {
		ns := namespaces[i%len(namespaces)]
		name := fmt.Sprintf("shared-%02d", i)
		add("v1", "ConfigMap", ns, name, map[string]any{"metadata": meta(ns, name, nil), "data": map[string]any{"value": fmt.Sprint(rng.Uint32())}})
	}
	return out
}

// CountByKind counts objects by kind.
func CountByKind(objs []Object) map[string]int {
	out := map[string]int{}
	for _, o := range objs {
		out[o.Kind]++
	}
	return out
}

// YAML returns objs as one multi-document YAML stream.
func YAML(objs []Object) ([]byte, error) {
	var b strings.Builder
	for i, o := range objs {
		data, err := yaml.Marshal(o.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.ID(), err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(data)
	}
	return []byte(b.String()), nil
}

// WriteKustomization writes objs into dir as a kustomization: crd.yaml,
// namespaces.yaml, one file per namespace, and kustomization.yaml listing
// them. Existing YAML files in dir are removed first.
func WriteKustomization(dir string, objs []Object) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	files := map[string][]Object{}
	for _, o := range objs {
		var f string
		switch {
		case o.Kind == "CustomResourceDefinition":
			f = "crd.yaml"
		case o.Namespace == "":
			f = "namespaces.yaml"
		default:
			f = o.Namespace + ".yaml"
		}
		files[f] = append(files[f], o)
	}
	names := make([]string, 0, len(files))
	for f, group := range files {
		data, err := YAML(group)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			return err
		}
		names = append(names, f)
	}
	sort.Strings(names)
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
	for _, n := range names {
		k += "- " + n + "\n"
	}
	return os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644)
}
