package fleet_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

// analysisFleet is a fleet whose canary wave is gated by the built-in
// error rate and a template of its own, with Prometheus per region.
const analysisFleet = `apiVersion: convoy.dev/v1alpha1
kind: Fleet
metadata: {name: demo}
spec:
  clusters:
  - {name: a, environment: staging, region: north, path: clusters/a, kubeconfig: {context: a}, labels: {team: shop}}
  - {name: b, environment: prod, region: south, path: clusters/b, kubeconfig: {context: b}, prometheus: {address: "https://prom.b:9090/", bearerTokenFile: /t, caFile: /ca}, analysis: [healthy-ratio]}
  rollout:
    analysis:
      prometheus:
        north: {address: "http://prom.north:9090"}
      templates:
      - name: queue-depth
        query: max(queue_depth{cluster="{{ .Cluster }}", team="{{ .Labels.team }}", wave="{{ .Wave }}"})
        condition: ">= 0 && < 100"
        interval: 5s
        count: 6
        failureLimit: 1
        consecutiveSuccesses: 3
    waves:
    - {name: canary, clusters: [a], bake: 1m, analysis: [error-rate, queue-depth]}
    - {name: main, clusters: [b]}
`

func TestAnalysisParses(t *testing.T) {
	f, err := fleet.Parse("fleet.yaml", []byte(analysisFleet), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Rollout.Waves[0].Analysis; !cmp.Equal(got, []string{"error-rate", "queue-depth"}) {
		t.Errorf("canary analysis = %v", got)
	}
	if f.Rollout.Waves[1].Analysis != nil {
		t.Errorf("main wave analysis = %v, want none", f.Rollout.Waves[1].Analysis)
	}
	a, b := f.ClusterByName("a"), f.ClusterByName("b")
	if a.Prometheus == nil || a.Prometheus.Address != "http://prom.north:9090" {
		t.Errorf("cluster a's Prometheus = %+v, want its region's", a.Prometheus)
	}
	if b.Prometheus == nil || *b.Prometheus != (fleet.Prometheus{Address: "https://prom.b:9090", BearerTokenFile: "/t", CAFile: "/ca"}) {
		t.Errorf("cluster b's Prometheus = %+v, want its own", b.Prometheus)
	}
	if !cmp.Equal(b.Analysis, []string{"healthy-ratio"}) {
		t.Errorf("cluster b's analysis = %v", b.Analysis)
	}
	// Only the built-ins the fleet names are kept.
	var names []string
	for n := range f.Rollout.Analyses {
		names = append(names, n)
	}
	if len(names) != 3 || f.Rollout.Analyses["latency-p99"] != nil {
		t.Errorf("analyses %v, want error-rate, healthy-ratio and queue-depth", names)
	}
	q := f.Rollout.Analyses["queue-depth"]
	if q.Interval != 5*time.Second || q.Count != 6 || q.FailureLimit != 1 || q.ConsecutiveSuccesses != 3 || q.Inconclusive != fleet.InconclusiveHold {
		t.Errorf("queue-depth = %+v", q)
	}
	got, err := q.Render(fleet.QueryData{Cluster: "a", Wave: "canary", Labels: a.Labels})
	if want := `max(queue_depth{cluster="a", team="shop", wave="canary"})`; err != nil || got != want {
		t.Errorf("Render = %q, %v; want %q", got, err, want)
	}
	er := f.Rollout.Analyses["error-rate"]
	if !er.Builtin || er.Interval != fleet.DefaultAnalysisInterval || er.ConsecutiveSuccesses != 1 {
		t.Errorf("error-rate = %+v", er)
	}
}

func TestConditions(t *testing.T) {
	for _, tt := range []struct {
		cond string
		v    float64
		want bool
	}{
		{"< 0.05", 0.01, true}, {"< 0.05", 0.05, false}, {"<= 0.05", 0.05, true},
		{">= 0.5", 0.5, true}, {">= 0.5", 0.49, false}, {"> 0 && < 1", 0.5, true},
		{"> 0 && < 1", 1, false}, {"== 1", 1, true}, {"!= 1", 1, false},
	} {
		c, err := fleet.ParseCondition(tt.cond)
		if err != nil {
			t.Fatalf("%q: %v", tt.cond, err)
		}
		if got := c.Met(tt.v); got != tt.want {
			t.Errorf("%q met by %v = %v, want %v", tt.cond, tt.v, got, tt.want)
		}
	}
	for _, bad := range []string{"", "0.05", "< x", "=< 1", "< 1 &&"} {
		if _, err := fleet.ParseCondition(bad); err == nil {
			t.Errorf("%q parsed, want an error", bad)
		}
	}
}

func TestAnalysisProblems(t *testing.T) {
	tests := []struct {
		name, old, new string
		want           []string
	}{
		{"bad PromQL", `max(queue_depth{`, `max(queue_depth{{"{{"}}`, []string{
			`fleet.yaml:14: spec.rollout.analysis.templates[0].query: for cluster "a": 1:17: parse error: unexpected left brace '{'`}},
		{"unknown analysis", `analysis: [error-rate, queue-depth]`, `analysis: [error-rates, queue-depth]`, []string{
			`fleet.yaml:21: spec.rollout.waves[0].analysis[0]: unknown analysis "error-rates", expected one of error-rate, healthy-ratio, latency-p99, queue-depth`}},
		{"bad condition", `condition: ">= 0 && < 100"`, `condition: "between 0 and 100"`, []string{
			`fleet.yaml:15: spec.rollout.analysis.templates[0].condition: "between 0 and 100" is not a comparison, expected one of <=, >=, ==, !=, <, > followed by a number`}},
		{"missing Prometheus", `        north: {address: "http://prom.north:9090"}`, `        west: {address: "http://prom.west:9090"}`, []string{
			`fleet.yaml:21: spec.rollout.waves[0].analysis[0]: cluster "a" has no Prometheus to measure "error-rate": set its prometheus or spec.rollout.analysis.prometheus for region "north"`}},
		{"unknown label in the query", `{{ .Labels.team }}`, `{{ .Labels.owner }}`, []string{
			`fleet.yaml:14: spec.rollout.analysis.templates[0].query: for cluster "a": analysis queue-depth: template: queue-depth:1:58: executing "queue-depth" at <.Labels.owner>: map has no entry for key "owner"`}},
		{"a built-in's name", `- name: queue-depth`, `- name: error-rate`, []string{
			`fleet.yaml:13: spec.rollout.analysis.templates[0].name: "error-rate" is a built-in analysis, name yours otherwise`,
			`fleet.yaml:21: spec.rollout.waves[0].analysis[1]: unknown analysis "queue-depth", expected one of error-rate, healthy-ratio, latency-p99`}},
		{"not an http URL", `"http://prom.north:9090"`, `"prom.north:9090"`, []string{
			`fleet.yaml:11: spec.rollout.analysis.prometheus.north.address: "prom.north:9090" is not an http(s) URL, expected e.g. http://prometheus.monitoring:9090`,
			`fleet.yaml:21: spec.rollout.waves[0].analysis[0]: cluster "a" has no Prometheus to measure "error-rate": set its prometheus or spec.rollout.analysis.prometheus for region "north"`}},
		{"numbers and choices", `        failureLimit: 1`, "        failureLimit: -1\n        inconclusive: pass", []string{
			`fleet.yaml:18: spec.rollout.analysis.templates[0].failureLimit: must be 0 or more, got -1`,
			`fleet.yaml:19: spec.rollout.analysis.templates[0].inconclusive: "pass" is not a choice, expected "hold" (the default) or "fail"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(analysisFleet, tt.old) {
				t.Fatalf("the fleet has no %q", tt.old)
			}
			_, err := fleet.Parse("fleet.yaml", []byte(strings.Replace(analysisFleet, tt.old, tt.new, 1)), "")
			if diff := cmp.Diff(tt.want, problemLines(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
