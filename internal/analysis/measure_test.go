package analysis_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/analysis"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// deadAddr is an address nothing listens on: a target Prometheus finds
// down.
func deadAddr(t *testing.T) string {
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestMeasureAgainstPrometheus runs the built-in analyses and a query of a
// missing metric against a real Prometheus scraping two clusters' services
// every second: one serving 8 % errors behind one of its two instances
// down, one serving 1 % with all three up.
func TestMeasureAgainstPrometheus(t *testing.T) {
	bad, good := testenv.NewExporter(t), testenv.NewExporter(t)
	bad.Set(0.08, 50*time.Millisecond)
	good.Set(0.01, 7*time.Second/10)
	prom := testenv.StartPrometheus(t, map[string][]string{
		"canary": {bad.Addr, deadAddr(t)},
		"prod":   {good.Addr, testenv.NewExporter(t).Addr, testenv.NewExporter(t).Addr},
	})
	q, err := analysis.NewQuerier(&fleet.Prometheus{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fleet.Parse("fleet.yaml", []byte(`apiVersion: convoy.dev/v1alpha1
kind: Fleet
metadata: {name: demo}
spec:
  clusters:
  - {name: canary, environment: staging, path: c, kubeconfig: {context: c}, prometheus: {address: "`+prom.URL+`"}}
  - {name: prod, environment: prod, path: p, kubeconfig: {context: p}, prometheus: {address: "`+prom.URL+`"}}
  rollout:
    analysis:
      templates:
      - {name: missing, query: 'sum(no_such_metric{cluster="{{ .Cluster }}"})', condition: "< 1"}
    waves:
    - {name: all, clusters: [canary, prod], analysis: [error-rate, latency-p99, healthy-ratio, missing]}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	measure := func(name, cluster string) analysis.Measurement {
		return q.Measure(ctx, f.Rollout.Analyses[name], fleet.QueryData{Cluster: cluster, Wave: "all"}, time.Now())
	}
	// rate() over [1m] needs two scrapes of each of the four live targets.
	testenv.WaitFor(t, 30*time.Second, "two scrapes of every target", func() bool {
		vs, err := prom.Query("count(rate(http_request_duration_seconds_count[1m]))")
		return err == nil && len(vs) == 1 && vs[0] == 4
	})

	for _, tt := range []struct {
		analysis, cluster, verdict string
		low, high                  float64
	}{
		{"error-rate", "canary", analysis.Fail, 0.05, 0.11},
		{"error-rate", "prod", analysis.Pass, 0, 0.03},
		{"healthy-ratio", "canary", analysis.Pass, 0.5, 0.5}, // one of two up: exactly the threshold
		{"healthy-ratio", "prod", analysis.Pass, 1, 1},
		{"latency-p99", "canary", analysis.Pass, 0, 0.1},
		{"latency-p99", "prod", analysis.Pass, 0.5, 1}, // 700ms, in the (0.5, 1] bucket
	} {
		m := measure(tt.analysis, tt.cluster)
		if m.Verdict != tt.verdict || m.Value == nil || *m.Value < tt.low || *m.Value > tt.high {
			t.Errorf("%s, want %s with a value in [%g, %g]", m, tt.verdict, tt.low, tt.high)
		}
		if !strings.Contains(m.Query, `cluster="`+tt.cluster+`"`) {
			t.Errorf("%s: query %q does not select the cluster", m, m.Query)
		}
	}
	// A metric nobody exports and a cluster nobody scrapes: no series,
	// never a success.
	if m := measure("missing", "prod"); m.Verdict != analysis.Inconclusive || m.Reason != "the query returned no series" {
		t.Errorf("missing metric: %s, want inconclusive: no series", m)
	}
	if m := measure("error-rate", "nowhere"); m.Verdict != analysis.Inconclusive || m.Value != nil {
		t.Errorf("unscraped cluster: %s, want inconclusive without a value", m)
	}

	// Prometheus stops: inconclusive, naming the failed query; back: pass.
	prom.Stop()
	if m := measure("error-rate", "prod"); m.Verdict != analysis.Inconclusive || !strings.HasPrefix(m.Reason, "query: ") {
		t.Errorf("Prometheus down: %s, want inconclusive naming the query's failure", m)
	}
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "Prometheus back", func() bool { return measure("error-rate", "prod").Verdict == analysis.Pass })
}
