package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Results of a rollout, the values of convoy_rollouts_total's result label.
const (
	ResultDone       = "done"       // every wave reached the revision
	ResultHeld       = "held"       // a policy held the change
	ResultDenied     = "denied"     // a policy denied the change
	ResultFailed     = "failed"     // a cluster failed to apply or become healthy
	ResultSuperseded = "superseded" // a newer revision replaced it mid-way
)

// NoPackage is the package label of a decision that no policy package made:
// an allow without messages.
const NoPackage = "none"

// DurationBuckets are the histogram buckets, in seconds, of wave and cluster
// apply durations: from 0.1 s (an apply with nothing to change) to 30 min (a
// wave waiting out its health timeout).
var DurationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800}

// FetchBuckets are the histogram buckets, in seconds, of Git fetches.
var FetchBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// Metrics holds convoy's collectors and the registry they are registered in.
// Safe for concurrent use; every method is a no-op on a nil *Metrics.
type Metrics struct {
	reg *prometheus.Registry

	rollouts          *prometheus.CounterVec
	waveDuration      *prometheus.HistogramVec
	clusterApply      *prometheus.HistogramVec
	objectsApplied    *prometheus.CounterVec
	objectsPruned     *prometheus.CounterVec
	policyDecisions   *prometheus.CounterVec
	holdsActive       prometheus.Gauge
	gitFetchDuration  prometheus.Histogram
	gitFetchErrors    prometheus.Counter
	gitLastSuccess    prometheus.Gauge
	githubCalls       *prometheus.CounterVec
	githubRateLimit   *prometheus.GaugeVec
	driftCorrections  *prometheus.CounterVec
	webhookDeliveries *prometheus.CounterVec
	leader            prometheus.Gauge
	analysisRuns      *prometheus.CounterVec
	analysisValue     *prometheus.GaugeVec
}

// New returns convoy's metrics, registered with the Go and process
// collectors in a registry of their own (not the global one, so that tests
// and several agents in one process do not collide).
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		rollouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_rollouts_total",
			Help: "Rollouts finished, by result (done, held, denied, failed, superseded).",
		}, []string{"result"}),
		waveDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "convoy_wave_duration_seconds",
			Help:    "Time to roll a revision out to one wave, bake included.",
			Buckets: DurationBuckets,
		}, []string{"wave"}),
		clusterApply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "convoy_cluster_apply_duration_seconds",
			Help:    "Time to apply a revision to one cluster and wait for its health.",
			Buckets: DurationBuckets,
		}, []string{"cluster"}),
		objectsApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_objects_applied_total",
			Help: "Objects applied with server-side apply, by cluster.",
		}, []string{"cluster"}),
		objectsPruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_objects_pruned_total",
			Help: "Objects pruned (deleted from the inventory), by cluster.",
		}, []string{"cluster"}),
		policyDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_policy_decisions_total",
			Help: "Policy decisions, by verdict (allow, hold, deny) and the Rego package that made them.",
		}, []string{"verdict", "package"}),
		holdsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "convoy_holds_active",
			Help: "Holds currently waiting for re-evaluation.",
		}),
		gitFetchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "convoy_git_fetch_duration_seconds",
			Help:    "Time of a fetch of the config repository, failed ones included.",
			Buckets: FetchBuckets,
		}),
		gitFetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "convoy_git_fetch_errors_total",
			Help: "Failed fetches of the config repository.",
		}),
		gitLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "convoy_git_last_success_timestamp_seconds",
			Help: "Unix time of the last successful fetch of the config repository; 0 before the first.",
		}),
		githubCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_github_api_calls_total",
			Help: `GitHub API calls, by HTTP status code ("error" when no response came).`,
		}, []string{"code"}),
		// A vector without labels, so that the series is absent until a
		// response has told the value: a 0 exported before the first call
		// would read as an exhausted rate limit.
		githubRateLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "convoy_github_rate_limit_remaining",
			Help: "Requests left in the GitHub rate-limit window, from the last X-RateLimit-Remaining.",
		}, nil),
		driftCorrections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_drift_corrections_total",
			Help: "Objects found drifted from Git and applied again, by cluster.",
		}, []string{"cluster"}),
		webhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_webhook_deliveries_total",
			Help: "GitHub webhook deliveries, by event and the HTTP status code of the answer.",
		}, []string{"event", "status"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "convoy_leader",
			Help: "1 when this replica leads (rolls out), 0 when it stands by.",
		}),
		analysisRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_analysis_runs_total",
			Help: "Measurements of the analyses that gate waves, by template and result (pass, fail, inconclusive).",
		}, []string{"template", "result"}),
		analysisValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "convoy_analysis_value",
			Help: "The value an analysis measured last, by template and cluster.",
		}, []string{"template", "cluster"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.rollouts, m.waveDuration, m.clusterApply, m.objectsApplied, m.objectsPruned,
		m.policyDecisions, m.holdsActive, m.gitFetchDuration, m.gitFetchErrors,
		m.gitLastSuccess, m.githubCalls, m.githubRateLimit, m.driftCorrections,
		m.webhookDeliveries, m.leader, m.analysisRuns, m.analysisValue,
	)
	// Known results start at 0, so that rate() and increase() see the first
	// rollout of each result instead of a series appearing from nothing.
	for _, r := range []string{ResultDone, ResultHeld, ResultDenied, ResultFailed, ResultSuperseded} {
		m.rollouts.WithLabelValues(r)
	}
	return m
}

// Registry is the registry holding every convoy metric and the Go and
// process collectors; nil on a nil *Metrics.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// RolloutFinished counts a rollout that ended with result, one of the
// Result constants.
func (m *Metrics) RolloutFinished(result string) {
	if m == nil {
		return
	}
	m.rollouts.WithLabelValues(result).Inc()
}

// ObserveWave records how long a wave took.
func (m *Metrics) ObserveWave(wave string, d time.Duration) {
	if m == nil {
		return
	}
	m.waveDuration.WithLabelValues(wave).Observe(d.Seconds())
}

// ObserveClusterApply records one apply to cluster: how long it took and how
// many objects it applied and pruned.
func (m *Metrics) ObserveClusterApply(cluster string, d time.Duration, applied, pruned int) {
	if m == nil {
		return
	}
	m.clusterApply.WithLabelValues(cluster).Observe(d.Seconds())
	// Touched even when zero, so that every cluster applied to has series.
	m.objectsApplied.WithLabelValues(cluster).Add(float64(max(applied, 0)))
	m.objectsPruned.WithLabelValues(cluster).Add(float64(max(pruned, 0)))
}

// PolicyDecision counts a verdict (allow, hold, deny) made by the Rego
// package pkg (e.g. convoy.approvals); an empty pkg counts as NoPackage.
func (m *Metrics) PolicyDecision(verdict, pkg string) {
	if m == nil {
		return
	}
	if pkg == "" {
		pkg = NoPackage
	}
	m.policyDecisions.WithLabelValues(verdict, pkg).Inc()
}

// SetHoldsActive sets the number of holds waiting for re-evaluation.
func (m *Metrics) SetHoldsActive(n int) {
	if m == nil {
		return
	}
	m.holdsActive.Set(float64(n))
}

// ObserveGitFetch records one fetch of the config repository: its duration,
// and either an error or the time of this success.
func (m *Metrics) ObserveGitFetch(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.gitFetchDuration.Observe(d.Seconds())
	if err != nil {
		m.gitFetchErrors.Inc()
		return
	}
	m.gitLastSuccess.SetToCurrentTime()
}

// DriftCorrected counts n drifted objects applied again in cluster.
func (m *Metrics) DriftCorrected(cluster string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.driftCorrections.WithLabelValues(cluster).Add(float64(n))
}

// AnalysisMeasured counts a measurement of template on cluster with its
// result and keeps its value (nil: the measurement had none).
func (m *Metrics) AnalysisMeasured(template, cluster, result string, value *float64) {
	if m == nil {
		return
	}
	m.analysisRuns.WithLabelValues(template, result).Inc()
	if value != nil {
		m.analysisValue.WithLabelValues(template, cluster).Set(*value)
	}
}

// WebhookDelivery counts a webhook delivery of event answered with the HTTP
// status code status. The caller bounds event to known event names: the
// header it comes from is not verified.
func (m *Metrics) WebhookDelivery(event string, status int) {
	if m == nil {
		return
	}
	m.webhookDeliveries.WithLabelValues(event, strconv.Itoa(status)).Inc()
}

// SetLeader records whether this replica leads.
func (m *Metrics) SetLeader(leading bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leading {
		v = 1
	}
	m.leader.Set(v)
}
