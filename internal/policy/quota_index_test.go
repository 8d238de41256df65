package policy

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"
)

// indexCases are rendered object lists (JSON) for the quota index: usual
// ones, which the Go index must read, and unusual ones, which it may leave to
// the Rego index.
var indexCases = []struct {
	name    string
	objects string
	usual   bool
}{
	{"empty", `[]`, true},
	{"deployments share a shape", `[
		{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "namespace": "x"}, "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "100m"}}}]}}}},
		{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"cpu": "1000"}},
		{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "b", "namespace": "x"}, "spec": {"template": {"spec": {"containers": [{"name": "other", "image": "x", "resources": {"requests": {"cpu": "100m"}}}]}}}}
	]`, true},
	{"every workload kind", `[
		{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"}, "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"memory": "512Mi"}}}]}}}},
		{"apiVersion": "apps/v1beta2", "kind": "ReplicaSet", "metadata": {"name": "r"}, "spec": {"replicas": 0, "template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": 2}}}]}}}},
		{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"}, "spec": {"replicas": 9, "template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}}},
		{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"parallelism": 5, "completions": 2, "template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}}},
		{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "k"}, "spec": {"parallelism": 3, "template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}}},
		{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"overhead": {"cpu": "250m"}, "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}},
		{"apiVersion": "example.com/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": 100, "template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100"}}}]}}}},
		{"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "cr"}, "data": 1}
	]`, true},
	{"init containers, sidecars and odd fields", `[
		{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": "3", "template": {"spec": {
			"initContainers": [{"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}}, {"name": "migrate", "restartPolicy": "Never", "resources": {"requests": {"cpu": "2500m"}}}],
			"containers": [{"name": "app", "resources": {"requests": {"cpu": "2"}}}, {"name": "bare"}, {"name": "list", "resources": []}, {"name": "str", "resources": {"requests": "1", "limits": {"cpu": "3"}}}],
			"overhead": "none"}}}},
		{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "b"}, "spec": {"template": {"spec": {"containers": {"not": "a list"}, "initContainers": null}}}}
	]`, true},
	{"invalid quantities", `[
		{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "namespace": "x"}, "spec": {"template": {"spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "lots", "memory": false}, "limits": {"memory": null}}}]}}}},
		{"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "x"}, "spec": {"hard": {"requests.cpu": "2000", "memory": "much"}}}
	]`, true},
	{"object without kind or apiVersion", `[{"metadata": {"name": "a"}}, {"kind": "Pod", "spec": {}}]`, true},
	{"fractional replicas", `[{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": 1.5, "template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}}}]`, false},
	{"apiVersion a number", `[{"apiVersion": 1, "kind": "Deployment"}]`, false},
	{"kind a list", `[{"apiVersion": "apps/v1", "kind": ["Deployment"]}]`, false},
	{"object a string", `["Deployment"]`, false},
	{"deployment without a template", `[{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": 2}}]`, false},
	{"pod with a list for spec", `[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": []}]`, false},
	{"container a string", `[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": ["app"]}}]`, false},
	{"huge replicas", `[{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": 100000000000000000000000, "template": {"spec": {"containers": []}}}}]`, false},
}

func parseObjects(t testing.TB, src string) ast.Value {
	t.Helper()
	var x any
	if err := util.UnmarshalJSON([]byte(src), &x); err != nil {
		t.Fatal(err)
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// regoIndex evaluates data.convoy.quota.index_objects, the Rego index.
func regoIndex(t testing.TB, objects ast.Value) ast.Value {
	t.Helper()
	modules, err := loadModules(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query("x := data.convoy.quota.index_objects(input)"), rego.ParsedInput(objects), rego.StrictBuiltinErrors(true)}
	for _, m := range modules {
		opts = append(opts, rego.ParsedModule(m))
	}
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("index_objects: %d results", len(rs))
	}
	v, err := ast.InterfaceToValue(rs[0].Bindings["x"])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ungroup lists an index's pods one object per line, in object order, with
// the group's sum of pods, and its resource quotas: what must not change
// when equal shapes are grouped.
func ungroup(t testing.TB, index ast.Value) []string {
	t.Helper()
	obj := index.(ast.Object)
	var lines []string
	err := obj.Get(ast.StringTerm("pods")).Value.(*ast.Array).Iter(func(g *ast.Term) error {
		group := g.Value.(*ast.Array)
		shape, members := group.Elem(0), group.Elem(1).Value.(*ast.Array)
		sum := 0
		err := members.Iter(func(m *ast.Term) error {
			i, _ := m.Value.(*ast.Array).Elem(0).Value.(ast.Number).Int()
			n, _ := m.Value.(*ast.Array).Elem(1).Value.(ast.Number).Int()
			sum += n
			lines = append(lines, fmt.Sprintf("object %06d: %d pods of %v", i, n, shape))
			return nil
		})
		if got := group.Elem(2).String(); got != fmt.Sprint(sum) {
			lines = append(lines, fmt.Sprintf("group of %v: %s pods, members have %d", shape, got, sum))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return append(lines, "resource quotas: "+obj.Get(ast.StringTerm("resource_quotas")).String())
}

func TestQuotaIndexMatchesRego(t *testing.T) {
	for _, tc := range indexCases {
		t.Run(tc.name, func(t *testing.T) {
			objects := parseObjects(t, tc.objects)
			got := quotaIndex(objects)
			if got == nil {
				if tc.usual {
					t.Fatal("Go index gave up on usual objects")
				}
				return
			}
			if !tc.usual {
				t.Fatalf("Go index read unusual objects: %v", got)
			}
			if diff := cmp.Diff(ungroup(t, regoIndex(t, objects)), ungroup(t, got)); diff != "" {
				t.Errorf("Go index differs from Rego (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQuotaIndexGroupsEqualShapes(t *testing.T) {
	got := quotaIndex(parseObjects(t, indexCases[1].objects))
	pods := got.(ast.Object).Get(ast.StringTerm("pods")).Value.(*ast.Array)
	if pods.Len() != 1 || pods.Elem(0).Value.(*ast.Array).Elem(2).String() != "4" {
		t.Errorf("pods = %v, want one group of 4 pods", pods)
	}
}

// decisions evaluates objects with the Go index and with the Rego one.
func decisions(t testing.TB, objects ast.Value) (goIndex, regoIndex Decision) {
	t.Helper()
	doc := parseObjects(t, `{"fleet": "f", "cluster": {"name": "c", "environment": "staging", "capacity": {"cpu": "10", "memory": "2Gi", "nvidia.com/gpu": "1"}},
		"change": {"category": "standard", "revision": "abc", "approvals": [{"user": "bob"}], "changes_requested": []},
		"now": {"time": "2026-01-01T00:00:00Z", "weekday": 4, "hour": 0, "minute": 0, "timezone": "UTC"}, "windows": []}`).(ast.Object)
	doc.Insert(ast.StringTerm("objects"), ast.NewTerm(objects))
	engines.once.Do(func() {
		engines.goIndex, engines.err = newEngine(Options{}, true)
		if engines.err == nil {
			engines.regoIndex, engines.err = newEngine(Options{}, false)
		}
	})
	if engines.err != nil {
		t.Fatal(engines.err)
	}
	return engines.goIndex.EvaluateValue(context.Background(), doc), engines.regoIndex.EvaluateValue(context.Background(), doc)
}

// engines are compiled once for decisions.
var engines struct {
	once               sync.Once
	goIndex, regoIndex *Engine
	err                error
}

func TestQuotaDecisionsMatchWithGoIndex(t *testing.T) {
	for _, tc := range indexCases {
		t.Run(tc.name, func(t *testing.T) {
			withGo, withRego := decisions(t, parseObjects(t, tc.objects))
			if diff := cmp.Diff(withRego, withGo); diff != "" {
				t.Errorf("decision with the Go index differs (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzQuotaIndex(f *testing.F) {
	for _, tc := range indexCases {
		f.Add([]byte(tc.objects))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var x any
		if err := util.UnmarshalJSON(data, &x); err != nil {
			return
		}
		objects, err := ast.InterfaceToValue(x)
		if err != nil {
			return
		}
		if _, ok := objects.(*ast.Array); !ok {
			return
		}
		if got := quotaIndex(objects); got != nil {
			if diff := cmp.Diff(ungroup(t, regoIndex(t, objects)), ungroup(t, got)); diff != "" {
				t.Errorf("Go index differs from Rego (-want +got):\n%s", diff)
			}
		}
		withGo, withRego := decisions(t, objects)
		if diff := cmp.Diff(withRego, withGo); diff != "" {
			t.Errorf("decision with the Go index differs (-want +got):\n%s", diff)
		}
	})
}
