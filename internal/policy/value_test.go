package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
)

// variedValue is a random value of every kind a rendered object may hold:
// strings from a small vocabulary (so that they and small maps and lists
// repeat), numbers of every Go type decoders produce, large integers,
// booleans, nulls, and maps and lists on both sides of maxShared. (No
// uint64 from 1<<63 on: ast.InterfaceToValue, which the converter follows,
// turns them negative, unlike their JSON form.)
func variedValue(r *rand.Rand, depth int) any {
	words := []string{"a", "b", "app", "v1", "Always", "100m", "", "é", "\u0000", "cpu", "memory", "kind"}
	numbers := []any{int64(0), int64(-5), int64(2), int64(1 << 62), int64(math.MinInt64), int(7), 0.25, 1e300, -0.0, float64(3),
		json.Number("3"), json.Number("12345678901234567890123"), json.Number("1.5e-7"), uint64(1 << 40)}
	n := r.IntN(10)
	if depth <= 0 {
		n = r.IntN(4)
	}
	switch n {
	case 0, 1:
		return words[r.IntN(len(words))]
	case 2:
		return numbers[r.IntN(len(numbers))]
	case 3:
		return []any{nil, true, false}[r.IntN(3)]
	case 4, 5, 6:
		m := map[string]any{}
		for range r.IntN(2 * maxShared) {
			m[words[r.IntN(len(words))]] = variedValue(r, depth-1)
		}
		return m
	case 7, 8:
		l := make([]any, r.IntN(3*maxShared))
		for i := range l {
			l[i] = variedValue(r, depth-1)
		}
		return l
	default:
		if r.IntN(2) == 0 {
			return map[string]string{"k": words[r.IntN(len(words))]}
		}
		return []string{words[r.IntN(len(words))], "x"}
	}
}

// variedObjects are n rendered objects: workloads the quota index reads,
// with shapes that repeat and shapes that do not, and varied other objects.
func variedObjects(n int) []map[string]any {
	r := rand.New(rand.NewPCG(1, 2))
	objects := make([]map[string]any, n)
	for i := range objects {
		meta := map[string]any{"name": fmt.Sprintf("o-%d", i%50), "namespace": "ns", "labels": map[string]any{"app": fmt.Sprintf("a%d", i%3)}}
		switch i % 4 {
		case 0:
			cpu := []string{"100m", "250m", "1", "lots"}[r.IntN(4)]
			objects[i] = map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": map[string]any{
				"replicas": []any{int64(2), int64(0), 1.5, json.Number("3")}[r.IntN(4)],
				"template": map[string]any{"spec": map[string]any{
					"containers":     []any{map[string]any{"name": "app", "resources": map[string]any{"requests": map[string]any{"cpu": cpu}, "limits": map[string]any{"memory": "64Mi"}}}},
					"initContainers": []any{map[string]any{"name": "proxy", "restartPolicy": "Always", "resources": map[string]any{"requests": map[string]any{"cpu": "10m"}}}},
				}},
			}}
		case 1:
			objects[i] = map[string]any{"apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta, "spec": map[string]any{"hard": map[string]any{"requests.cpu": "2"}}}
		case 2:
			objects[i] = map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": map[string]any{"parallelism": int64(3), "template": map[string]any{"spec": map[string]any{
				"containers": []any{map[string]any{"name": "c", "resources": map[string]any{"requests": map[string]any{"cpu": "1", "memory": int64(1 << 30)}}}}}}}}
		default:
			objects[i] = map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": variedValue(r, 4)}
		}
	}
	return objects
}

// straightforward converts v as ast.InterfaceToValue does, as one value.
func straightforward(t *testing.T, v any) ast.Value {
	t.Helper()
	want, err := ast.InterfaceToValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// viaJSON converts v through its JSON form, as `convoy policy eval` reads it.
func viaJSON(t *testing.T, v any) ast.Value {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := util.UnmarshalJSON(raw, &x); err != nil {
		t.Fatal(err)
	}
	return straightforward(t, x)
}

func sameValue(t *testing.T, what string, want, got ast.Value) {
	t.Helper()
	if want.Compare(got) != 0 || want.Hash() != got.Hash() {
		t.Errorf("%s = %v\nwant %v", what, got, want)
	}
}

// TestConvertObjectsEqualsInterfaceToValue checks the converter, on one
// goroutine and on several, against ast.InterfaceToValue of the objects and
// of their JSON form.
func TestConvertObjectsEqualsInterfaceToValue(t *testing.T) {
	for _, n := range []int{0, 1, 40, 3*minObjectsPerWorker + 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			objects := variedObjects(n)
			terms, _, err := convertObjects(objects, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(terms) != n {
				t.Fatalf("%d terms, want %d", len(terms), n)
			}
			for i, o := range objects {
				sameValue(t, fmt.Sprintf("object %d", i), straightforward(t, o), terms[i].Value)
				if t.Failed() {
					return
				}
			}
			sameValue(t, "objects", straightforward(t, objects), ast.NewArray(terms...))
			sameValue(t, "objects", viaJSON(t, objects), ast.NewArray(terms...))
		})
	}
}

// TestConverterSharesEqualValues checks that equal small objects and lists
// are one term, and that values that only compare equal are not merged
// with a different Go type's.
func TestConverterSharesEqualValues(t *testing.T) {
	c := newConverter(1)
	a, err := c.term(map[string]any{"requests": map[string]any{"cpu": "1", "memory": "1Gi"}, "ports": []any{int64(80), "x"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.term(map[string]any{"ports": []any{int64(80), "x"}, "requests": map[string]any{"memory": "1Gi", "cpu": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("equal objects are two terms %v, %v; want one", a, b)
	}
	d, err := c.term(map[string]any{"ports": []any{json.Number("80"), "x"}, "requests": map[string]any{"memory": "1Gi", "cpu": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Value.Compare(a.Value) != 0 {
		t.Errorf("object with a json.Number = %v, want %v", d, a)
	}
}

func TestConvertObjectsErrors(t *testing.T) {
	objects := variedObjects(3 * minObjectsPerWorker)
	objects[2*minObjectsPerWorker+1]["spec"] = map[string]any{"bad": []any{func() {}}}
	objects[len(objects)-1]["spec"] = make(chan int)
	_, _, err := convertObjects(objects, true)
	_, want := ast.InterfaceToValue(objects[2*minObjectsPerWorker+1])
	if err == nil || want == nil || err.Error() != want.Error() {
		t.Errorf("error = %v, want %v", err, want)
	}
}

// TestObjectIndexEqualsQuotaIndex checks the index read while converting
// against quotaIndex of the converted list and of the straightforward one.
func TestObjectIndexEqualsQuotaIndex(t *testing.T) {
	type list struct {
		name    string
		objects []any
	}
	var lists []list
	for _, tc := range indexCases {
		var x []any
		if err := util.UnmarshalJSON([]byte(tc.objects), &x); err != nil {
			t.Fatal(err)
		}
		lists = append(lists, list{tc.name, x})
	}
	for _, n := range []int{17, 3*minObjectsPerWorker + 7} {
		var x []any
		for _, o := range variedObjects(n) {
			x = append(x, o)
		}
		lists = append(lists, list{fmt.Sprintf("%d varied objects", n), x})
	}
	for _, l := range lists {
		t.Run(l.name, func(t *testing.T) {
			terms, idx, err := convertObjects(l.objects, true)
			if err != nil {
				t.Fatal(err)
			}
			got := idx.value()
			for what, want := range map[string]ast.Value{
				"quotaIndex of the converted list": quotaIndex(ast.NewArray(terms...)),
				"quotaIndex of the list":           quotaIndex(straightforward(t, l.objects)),
			} {
				switch {
				case want == nil && got == nil:
				case want == nil || got == nil:
					t.Errorf("index = %v, %s = %v", got, what, want)
				default:
					sameValue(t, "index", want, got)
				}
			}
		})
	}
}

// TestEvaluateEqualsStraightforwardConversion checks that Evaluate decides
// as EvaluateValue does on the input converted the straightforward way,
// through JSON, for inputs with quota messages of every kind.
func TestEvaluateEqualsStraightforwardConversion(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet.Fleet{Name: "f", Clusters: []fleet.Cluster{{Name: "c", Environment: "staging",
		Capacity: map[string]resource.Quantity{"cpu": resource.MustParse("200"), "memory": resource.MustParse("1Ti")}}}}
	ch := &change.Change{Revision: "abc", Category: change.Normal, Approvals: []change.Approval{{User: "bob", Permission: "write", Type: change.TypeUser}},
		PullRequest: &change.PullRequest{Number: 1, Author: "alice", Body: "## Rollback\nrevert\n"}}
	for _, n := range []int{5, 3*minObjectsPerWorker + 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var objs []*unstructured.Unstructured
			for _, o := range variedObjects(n) {
				objs = append(objs, &unstructured.Unstructured{Object: o})
			}
			in, err := BuildInput(f, &f.Clusters[0], ch, objs, nil, time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			got := e.Evaluate(context.Background(), in)
			want := e.EvaluateValue(context.Background(), viaJSON(t, in))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Evaluate differs from EvaluateValue of the JSON document (-want +got):\n%s", diff)
			}
			if n > 100 && (len(got.Deny) == 0 || !strings.Contains(got.Deny[len(got.Deny)-1].Msg, "exceed capacity")) {
				t.Errorf("decision = %+v, want quota denies", got)
			}
		})
	}
}

// TestParseInputEqualsInterfaceToValue checks ParseInput's conversion
// against ast.InterfaceToValue of the decoded document.
func TestParseInputEqualsInterfaceToValue(t *testing.T) {
	doc := map[string]any{"fleet": "f", "cluster": map[string]any{"name": "c", "environment": "e"},
		"change": map[string]any{"category": "normal"}, "now": map[string]any{"time": "t", "weekday": 1, "hour": 2, "minute": 3},
		"windows": []any{map[string]any{"name": "w", "active": true, "until": nil}}, "objects": variedObjects(3*minObjectsPerWorker + 7),
		"extra": variedValue(rand.New(rand.NewPCG(3, 4)), 5)}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseInput("in.json", raw)
	if err != nil {
		t.Fatal(err)
	}
	sameValue(t, "ParseInput", viaJSON(t, doc), got)
}

// FuzzConvertObjects checks the converter and the index it reads against
// ast.InterfaceToValue and quotaIndex on any JSON list.
func FuzzConvertObjects(f *testing.F) {
	for _, tc := range indexCases {
		f.Add([]byte(tc.objects))
	}
	f.Add([]byte(`[{"a": [1, 1.0, 1e0, "1", {"b": null}], "b": {"b": null}}, {"b": {"b": null}, "a": [1, 1.0]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var list []any
		if err := util.UnmarshalJSON(data, &list); err != nil {
			return
		}
		want, wantErr := ast.InterfaceToValue(list)
		terms, idx, err := convertObjects(list, true)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("error = %v, want %v", err, wantErr)
		}
		if err != nil {
			return
		}
		got := ast.NewArray(terms...)
		sameValue(t, "objects", want, got)
		wantIndex, gotIndex := quotaIndex(want), idx.value()
		if (wantIndex == nil) != (gotIndex == nil) || wantIndex != nil && wantIndex.Compare(gotIndex) != 0 {
			t.Errorf("index = %v, want %v", gotIndex, wantIndex)
		}
	})
}

func TestParallelPanicsInTheCaller(t *testing.T) {
	defer func() {
		if p := recover(); p != "worker 1" {
			t.Errorf("recovered %v, want worker 1's panic", p)
		}
	}()
	ran := make([]bool, 3)
	parallel(3, func(w int) {
		ran[w] = true
		if w == 1 {
			panic("worker 1")
		}
	})
	t.Errorf("parallel returned after a panic; ran %v", ran)
}
