package policy_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func window(t testing.TB, schedule string, d time.Duration) fleet.Window {
	t.Helper()
	s, err := cron.ParseStandard(schedule)
	if err != nil {
		t.Fatal(err)
	}
	return fleet.Window{Name: "w", Kind: "deny", Schedule: schedule, Cron: s, Duration: d}
}

func TestWindowState(t *testing.T) {
	shanghai := zone(t, "Asia/Shanghai")
	newYork := zone(t, "America/New_York")
	berlin := zone(t, "Europe/Berlin")
	at := func(loc *time.Location, s string) time.Time {
		t.Helper()
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name      string
		schedule  string
		duration  time.Duration
		now       time.Time
		wantUntil string // "" when not active
	}{
		{"business hours open", "0 9 * * 1-5", 9 * time.Hour, at(shanghai, "2026-11-25 10:00"), "2026-11-25T18:00:00+08:00"},
		{"opens at its start", "0 9 * * 1-5", 9 * time.Hour, at(shanghai, "2026-11-25 09:00"), "2026-11-25T18:00:00+08:00"},
		{"closed at its end", "0 9 * * 1-5", 9 * time.Hour, at(shanghai, "2026-11-25 18:00"), ""},
		{"closed before its start", "0 9 * * 1-5", 9 * time.Hour, at(shanghai, "2026-11-25 08:59"), ""},
		{"closed on saturday", "0 9 * * 1-5", 9 * time.Hour, at(shanghai, "2026-11-28 10:00"), ""},
		{"across midnight, after it", "0 22 * * *", 4 * time.Hour, at(shanghai, "2026-11-26 01:30"), "2026-11-26T02:00:00+08:00"},
		{"across midnight, before it", "0 22 * * *", 4 * time.Hour, at(shanghai, "2026-11-25 23:59"), "2026-11-26T02:00:00+08:00"},
		{"across midnight, closed", "0 22 * * *", 4 * time.Hour, at(shanghai, "2026-11-26 02:00"), ""},
		{"friday night into saturday", "0 22 * * 5", 8 * time.Hour, at(shanghai, "2026-11-28 05:00"), "2026-11-28T06:00:00+08:00"},
		{"overlapping starts keep the latest", "0 * * * *", 2 * time.Hour, at(shanghai, "2026-11-25 10:30"), "2026-11-25T12:00:00+08:00"},
		// New York springs forward at 02:00 on 2026-03-08: a 3h window
		// from 01:00 EST ends at 05:00 EDT, three hours later.
		{"spring forward, open", "0 1 * * *", 3 * time.Hour, at(newYork, "2026-03-08 04:30"), "2026-03-08T05:00:00-04:00"},
		{"spring forward, closed after 3 elapsed hours", "0 1 * * *", 3 * time.Hour, at(newYork, "2026-03-08 05:00"), ""},
		// Berlin falls back at 03:00 CEST on 2026-10-25: a 3h window from
		// midnight CEST ends at 02:00 CET, so the second 02:30 is outside.
		{"fall back, first 02:30", "0 0 * * *", 3 * time.Hour, time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC).In(berlin), "2026-10-25T02:00:00+01:00"},
		{"fall back, second 02:30", "0 0 * * *", 3 * time.Hour, time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC).In(berlin), ""},
		{"zero duration", "0 9 * * *", 0, at(shanghai, "2026-11-25 09:00"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active, until, err := policy.WindowState(window(t, tt.schedule, tt.duration), tt.now)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if active {
				got = until.In(tt.now.Location()).Format(time.RFC3339)
			} else if !until.IsZero() {
				t.Errorf("until = %s for an inactive window, want zero", until)
			}
			if got != tt.wantUntil {
				t.Errorf("WindowState(%q, %s, %s) until = %q, want %q", tt.schedule, tt.duration, tt.now.Format(time.RFC3339), got, tt.wantUntil)
			}
		})
	}
}

func TestWindowStateParsesScheduleWithoutCron(t *testing.T) {
	w := fleet.Window{Name: "freeze", Schedule: "0 9 * * *", Duration: time.Hour}
	active, _, err := policy.WindowState(w, time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC))
	if err != nil || !active {
		t.Errorf("WindowState = %v, %v; want active", active, err)
	}
	w.Schedule = "every day"
	if _, _, err := policy.WindowState(w, time.Now()); err == nil || !strings.HasPrefix(err.Error(), `window freeze: schedule "every day": `) {
		t.Errorf("error = %v, want one naming the window and schedule", err)
	}
}

func testFleet(t testing.TB) *fleet.Fleet {
	return &fleet.Fleet{
		Name:     "intelligent-environment",
		Timezone: "Asia/Shanghai",
		Location: zone(t, "Asia/Shanghai"),
		Clusters: []fleet.Cluster{{
			Name: "prod-primary", Environment: "production", Region: "cn-east", Wave: "primary",
			Capacity: map[string]resource.Quantity{"cpu": resource.MustParse("100"), "memory": resource.MustParse("200Gi")},
		}},
		Windows: []fleet.Window{
			func() fleet.Window {
				w := window(t, "0 9 * * 1-5", 9*time.Hour)
				w.Name, w.Environments, w.AllowCategories = "business-hours", []string{"production"}, []string{"emergency"}
				return w
			}(),
			func() fleet.Window {
				w := window(t, "0 0 24 12 *", 48*time.Hour)
				w.Name = "christmas"
				return w
			}(),
		},
	}
}

func TestBuildInput(t *testing.T) {
	f := testFleet(t)
	ch := &change.Change{Revision: "abc", Category: change.Major, PullRequest: &change.PullRequest{Number: 42, Author: "alice"}}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "a", "namespace": "ns"},
		"data":     map[string]any{"k": "v"},
	}}
	// 02:00 UTC is 10:00 on Wednesday in Shanghai.
	in, err := policy.BuildInput(f, &f.Clusters[0], ch, []*unstructured.Unstructured{obj}, nil, time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"fleet":"intelligent-environment",` +
		`"cluster":{"name":"prod-primary","environment":"production","region":"cn-east","wave":"primary","capacity":{"cpu":"100","memory":"200Gi"},"labels":{}},` +
		`"change":{"revision":"abc","previous_revision":"","category":"major",` +
		`"pull_request":{"number":42,"title":"","body":"","author":"alice","labels":[],"head_sha":"","merged":false,"url":""},` +
		`"approvals":[],"changes_requested":[],"commit":{"sha":"","author":"","message":"","verified":false}},` +
		`"now":{"time":"2026-11-25T10:00:00+08:00","weekday":3,"hour":10,"minute":0,"timezone":"Asia/Shanghai"},` +
		`"windows":[{"name":"business-hours","kind":"deny","active":true,"until":"2026-11-25T18:00:00+08:00","environments":["production"],"allowCategories":["emergency"]},` +
		`{"name":"christmas","kind":"deny","active":false,"until":"","environments":[],"allowCategories":[]}],` +
		`"objects":[{"apiVersion":"v1","data":{"k":"v"},"kind":"ConfigMap","metadata":{"name":"a","namespace":"ns"}}],` +
		`"diff":null}`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("input JSON (-want +got):\n%s", diff)
	}

	// The Rego value is the same document.
	v, err := in.Value()
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON any
	fromValue, err := ast.JSON(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromJSON, plain(t, fromValue)); diff != "" {
		t.Errorf("Value() differs from the JSON document (-json +value):\n%s", diff)
	}
}

func TestBuildInputWithoutChange(t *testing.T) {
	f := testFleet(t)
	if _, err := policy.BuildInput(f, &f.Clusters[0], nil, nil, nil, time.Now()); err == nil {
		t.Error("BuildInput without a change succeeded, want an error")
	}
}

func TestParseInputErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"syntax", "{\n  \"fleet\": \"x\",\n  \"cluster\": {,}\n}", []string{"line 3, column 15: invalid JSON: invalid character ',' looking for beginning of object key string"}},
		{"truncated", "{\n  \"fleet\": ", []string{"line 2, column 12: invalid JSON: unexpected end of input"}},
		{"trailing", "{}\n{}", []string{"line 2, column 1: invalid JSON: data after the document"}},
		{"not an object", "[]", []string{"invalid input: want a JSON object"}},
		{"missing fields", `{"fleet": 1, "cluster": {"name": "a"}, "change": null, "now": {"weekday": 1, "hour": 2, "minute": 3, "time": "t"}, "windows": [], "objects": {}}`, []string{
			"field fleet: want string, got number",
			"missing required field cluster.environment (string)",
			"field change: want object, got null",
			"field objects: want array, got object",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.ParseInput("in.json", []byte(tt.doc))
			var ie *policy.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("ParseInput error = %v, want *policy.InputError", err)
			}
			if diff := cmp.Diff(tt.want, ie.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzBuildInput checks that any change document that decodes builds an
// input whose Rego value is the same document as its JSON.
func FuzzBuildInput(f *testing.F) {
	f.Add([]byte(`{"revision":"a","category":"major","pull_request":{"number":1,"labels":null},"approvals":null}`))
	f.Add([]byte(`{"category":"unreviewed","pull_request":null,"changes_requested":["x"]}`))
	f.Add([]byte(`{"category":"emergency","pull_request":{"body":"\u0000\ud800"},"commit":{"message":"é"}}`))
	fl := testFleet(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var ch change.Change
		if err := json.Unmarshal(data, &ch); err != nil {
			return
		}
		in, err := policy.BuildInput(fl, &fl.Clusters[0], &ch, nil, &policy.Diff{Unchanged: 1}, time.Unix(1_780_000_000, 0))
		if err != nil {
			t.Fatal(err)
		}
		v, err := in.Value()
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var a any
		if err := json.Unmarshal(js, &a); err != nil {
			t.Fatal(err)
		}
		b, err := ast.JSON(v)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, plain(t, b)); diff != "" {
			t.Errorf("Value() differs from JSON (-json +value):\n%s", diff)
		}
		if in.Change.Approvals == nil || in.Change.ChangesRequested == nil {
			t.Error("lists of the change are null, want empty")
		}
	})
}

// plain re-decodes v as encoding/json does, numbers as float64.
func plain(t *testing.T, v any) any {
	t.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValueEqualsJSONConversion(t *testing.T) {
	f := testFleet(t)
	ch := &change.Change{Revision: "abc", Category: change.Major, PullRequest: &change.PullRequest{Number: 42, Author: "alice"}}
	objs := []*unstructured.Unstructured{{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "a", "namespace": "ns", "labels": map[string]any{}},
		"spec": map[string]any{"replicas": int64(3), "paused": false, "ratio": 0.25, "selector": nil,
			"template": map[string]any{"spec": map[string]any{"containers": []any{
				map[string]any{"name": "a", "args": []any{"a", "a", int64(1)}, "resources": map[string]any{"requests": map[string]any{"cpu": "100m"}}},
				map[string]any{"name": "b", "ports": []any{}, "env": map[string]string{"k": "v"}},
			}}}},
	}}, nil, {Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"a": "a"}}}}
	in, err := policy.BuildInput(f, &f.Clusters[0], ch, objs, &policy.Diff{Create: []string{"x"}}, time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := policy.ParseInput("input.json", raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := in.Value()
	if err != nil {
		t.Fatal(err)
	}
	if want.Compare(got) != 0 || want.Hash() != got.Hash() {
		t.Errorf("Value() = %v, want %v", got, want)
	}
}
