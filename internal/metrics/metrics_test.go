package metrics_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/convoy-gitops/convoy/internal/metrics"
)

// snapshot flattens the convoy_ series of reg into "name{k=v,…}" → value;
// a histogram gives name_count and name_sum entries.
func snapshot(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "convoy_") {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			series := "{" + strings.Join(labels, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[f.GetName()+series] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[f.GetName()+series] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[f.GetName()+"_count"+series] = float64(m.GetHistogram().GetSampleCount())
				out[f.GetName()+"_sum"+series] = m.GetHistogram().GetSampleSum()
			default:
				t.Fatalf("%s: unexpected type %s", f.GetName(), f.GetType())
			}
		}
	}
	return out
}

// changed is what moved between two snapshots: new series and series whose
// value differs, with their value after.
func changed(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if old, ok := before[k]; !ok || old != v {
			out[k] = v
		}
	}
	return out
}

func TestMethodsMoveTheirSeries(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(m *metrics.Metrics)
		want map[string]float64
	}{
		{"rollout done", func(m *metrics.Metrics) { m.RolloutFinished(metrics.ResultDone) },
			map[string]float64{"convoy_rollouts_total{result=done}": 1}},
		{"rollout superseded twice", func(m *metrics.Metrics) {
			m.RolloutFinished("superseded")
			m.RolloutFinished("superseded")
		}, map[string]float64{"convoy_rollouts_total{result=superseded}": 2}},
		{"wave", func(m *metrics.Metrics) { m.ObserveWave("canary", 90*time.Second) },
			map[string]float64{
				"convoy_wave_duration_seconds_count{wave=canary}": 1,
				"convoy_wave_duration_seconds_sum{wave=canary}":   90,
			}},
		{"cluster apply", func(m *metrics.Metrics) { m.ObserveClusterApply("prod-edge", 1500*time.Millisecond, 12, 3) },
			map[string]float64{
				"convoy_cluster_apply_duration_seconds_count{cluster=prod-edge}": 1,
				"convoy_cluster_apply_duration_seconds_sum{cluster=prod-edge}":   1.5,
				"convoy_objects_applied_total{cluster=prod-edge}":                12,
				"convoy_objects_pruned_total{cluster=prod-edge}":                 3,
			}},
		{"cluster apply with nothing to do", func(m *metrics.Metrics) { m.ObserveClusterApply("dr", 0, 0, 0) },
			map[string]float64{
				"convoy_cluster_apply_duration_seconds_count{cluster=dr}": 1,
				"convoy_cluster_apply_duration_seconds_sum{cluster=dr}":   0,
				"convoy_objects_applied_total{cluster=dr}":                0,
				"convoy_objects_pruned_total{cluster=dr}":                 0,
			}},
		{"policy deny", func(m *metrics.Metrics) { m.PolicyDecision("deny", "convoy.approvals") },
			map[string]float64{"convoy_policy_decisions_total{package=convoy.approvals,verdict=deny}": 1}},
		{"policy allow without package", func(m *metrics.Metrics) { m.PolicyDecision("allow", "") },
			map[string]float64{"convoy_policy_decisions_total{package=none,verdict=allow}": 1}},
		{"holds", func(m *metrics.Metrics) { m.SetHoldsActive(4) },
			map[string]float64{"convoy_holds_active{}": 4}},
		{"git fetch failed", func(m *metrics.Metrics) { m.ObserveGitFetch(250*time.Millisecond, errors.New("connection refused")) },
			map[string]float64{
				"convoy_git_fetch_duration_seconds_count{}": 1,
				"convoy_git_fetch_duration_seconds_sum{}":   0.25,
				"convoy_git_fetch_errors_total{}":           1,
			}},
		{"drift", func(m *metrics.Metrics) { m.DriftCorrected("staging", 2) },
			map[string]float64{"convoy_drift_corrections_total{cluster=staging}": 2}},
		{"no drift", func(m *metrics.Metrics) { m.DriftCorrected("staging", 0) },
			map[string]float64{}},
		{"webhook", func(m *metrics.Metrics) { m.WebhookDelivery("push", 202) },
			map[string]float64{"convoy_webhook_deliveries_total{event=push,status=202}": 1}},
		{"leader", func(m *metrics.Metrics) { m.SetLeader(true) },
			map[string]float64{"convoy_leader{}": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			before := snapshot(t, m.Registry())
			tc.do(m)
			if diff := cmp.Diff(tc.want, changed(before, snapshot(t, m.Registry()))); diff != "" {
				t.Errorf("series moved (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRolloutResultsStartAtZero(t *testing.T) {
	m := metrics.New()
	n, err := testutil.GatherAndCount(m.Registry(), "convoy_rollouts_total")
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("convoy_rollouts_total has %d series before any rollout, want 5 (one per result)", n)
	}
	want := `
# HELP convoy_rollouts_total Rollouts finished, by result (done, held, denied, failed, superseded).
# TYPE convoy_rollouts_total counter
convoy_rollouts_total{result="denied"} 0
convoy_rollouts_total{result="done"} 0
convoy_rollouts_total{result="failed"} 0
convoy_rollouts_total{result="held"} 0
convoy_rollouts_total{result="superseded"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "convoy_rollouts_total"); err != nil {
		t.Error(err)
	}
}

func TestGitFetchSuccessSetsTimestamp(t *testing.T) {
	m := metrics.New()
	start := time.Now()
	m.ObserveGitFetch(time.Second, nil)
	got := snapshot(t, m.Registry())
	ts := got["convoy_git_last_success_timestamp_seconds{}"]
	if ts < float64(start.Unix()) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("convoy_git_last_success_timestamp_seconds = %v, want about %d", ts, start.Unix())
	}
	if n := got["convoy_git_fetch_errors_total{}"]; n != 0 {
		t.Errorf("convoy_git_fetch_errors_total = %v after a success, want 0", n)
	}
	// A failure afterwards keeps the time of the last success.
	m.ObserveGitFetch(time.Second, errors.New("timeout"))
	if after := snapshot(t, m.Registry())["convoy_git_last_success_timestamp_seconds{}"]; after != ts {
		t.Errorf("a failed fetch moved the last success from %v to %v", ts, after)
	}
}

func TestGaugesGoBothWays(t *testing.T) {
	m := metrics.New()
	m.SetLeader(true)
	m.SetLeader(false)
	m.SetHoldsActive(3)
	m.SetHoldsActive(1)
	want := `
# HELP convoy_holds_active Holds currently waiting for re-evaluation.
# TYPE convoy_holds_active gauge
convoy_holds_active 1
# HELP convoy_leader 1 when this replica leads (rolls out), 0 when it stands by.
# TYPE convoy_leader gauge
convoy_leader 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "convoy_leader", "convoy_holds_active"); err != nil {
		t.Error(err)
	}
}

func TestDurationBuckets(t *testing.T) {
	m := metrics.New()
	m.ObserveWave("primary", 29*time.Minute)
	m.ObserveClusterApply("staging", 80*time.Millisecond, 1, 0)
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		switch f.GetName() {
		case "convoy_wave_duration_seconds", "convoy_cluster_apply_duration_seconds":
		default:
			continue
		}
		var bounds []float64
		h := f.GetMetric()[0].GetHistogram()
		for _, b := range h.GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
		}
		if bounds[0] > 0.1 || bounds[len(bounds)-1] < 1800 {
			t.Errorf("%s buckets %v do not span 0.1 s to 30 min", f.GetName(), bounds)
		}
		// The observation must land in a finite bucket: 29 min below 30 min,
		// 80 ms in the first.
		if got := h.GetBucket()[len(bounds)-1].GetCumulativeCount(); got != 1 {
			t.Errorf("%s: the 30 min bucket holds %d observations, want 1", f.GetName(), got)
		}
	}
}

func TestGitHubTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("X-RateLimit-Remaining", "4999")
			fmt.Fprint(w, `{}`)
		case "/broken":
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()

	m := metrics.New()
	client := &http.Client{Transport: m.GitHubTransport(srv.Client().Transport)}
	for _, path := range []string{"/ok", "/broken", "/broken"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A call that gets no response at all: the server is gone.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if resp, err := client.Get(closed.URL); err == nil {
		resp.Body.Close()
		t.Fatal("GET of a closed server succeeded")
	}

	want := `
# HELP convoy_github_api_calls_total GitHub API calls, by HTTP status code ("error" when no response came).
# TYPE convoy_github_api_calls_total counter
convoy_github_api_calls_total{code="200"} 1
convoy_github_api_calls_total{code="500"} 2
convoy_github_api_calls_total{code="error"} 1
# HELP convoy_github_rate_limit_remaining Requests left in the GitHub rate-limit window, from the last X-RateLimit-Remaining.
# TYPE convoy_github_rate_limit_remaining gauge
convoy_github_rate_limit_remaining 4999
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"convoy_github_api_calls_total", "convoy_github_rate_limit_remaining"); err != nil {
		t.Error(err)
	}
}

func TestRateLimitAbsentUntilKnown(t *testing.T) {
	m := metrics.New()
	n, err := testutil.GatherAndCount(m.Registry(), "convoy_github_rate_limit_remaining")
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("convoy_github_rate_limit_remaining has %d series before any call, want none (0 would read as exhausted)", n)
	}
}

func TestRegistryHasRuntimeCollectors(t *testing.T) {
	families, err := metrics.New().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	for _, want := range []string{"go_goroutines", "process_start_time_seconds"} {
		if !slices.Contains(names, want) {
			t.Errorf("registry lacks %s", want)
		}
	}
}

func TestNilMetricsDoesNothing(t *testing.T) {
	var m *metrics.Metrics
	m.RolloutFinished("done")
	m.ObserveWave("canary", time.Second)
	m.ObserveClusterApply("staging", time.Second, 1, 1)
	m.PolicyDecision("allow", "")
	m.SetHoldsActive(1)
	m.ObserveGitFetch(time.Second, nil)
	m.ObserveGitFetch(time.Second, errors.New("x"))
	m.DriftCorrected("staging", 1)
	m.WebhookDelivery("push", 202)
	m.SetLeader(true)
	if m.Registry() != nil {
		t.Error("nil Metrics has a registry")
	}
	if got := m.GitHubTransport(nil); got != nil {
		t.Errorf("nil Metrics wrapped a nil transport into %T", got)
	}
	next := http.DefaultTransport
	if got := m.GitHubTransport(next); got != next {
		t.Errorf("nil Metrics wrapped the transport into %T", got)
	}
}
