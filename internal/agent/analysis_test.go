package agent

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// analysisHarness serves the canary's service (1 % errors) to a real
// Prometheus scraping it every second, and a fleet whose canary wave,
// baking bake, is gated by the errors analysis on it, with rollback.
func analysisHarness(t *testing.T, bake string) (*testenv.Exporter, *testenv.Prometheus, testenv.Fleet, *harness) {
	svc := testenv.NewExporter(t)
	svc.Set(0.01, 50*time.Millisecond)
	prom := testenv.StartPrometheus(t, map[string][]string{"staging": {svc.Addr}})
	fl := testFleet(t, "", bake)
	fl.CanaryGates = []string{"errors"}
	fl.Analysis = "    rollbackOnFailure: true\n" + testenv.ErrorsAnalysis(prom.URL, "north")
	h := newHarness(t, fl.Files(1))
	prom.WaitForSeries(t, 30*time.Second, `rate(http_requests_total{cluster="staging"}[4s])`)
	return svc, prom, fl, h
}

// TestAgentAnalysisRollsBackACanaryServingErrors: the canary wave is gated
// by an error-rate analysis on a real Prometheus scraping the canary's
// service every second. Version 1 serves 1 % errors: the analysis passes
// and the rollout completes. Version 2 serves 8 % once it is applied: the
// analysis fails in the canary wave, the canary goes back to version 1 and
// production is never written with version 2.
func TestAgentAnalysisRollsBackACanaryServingErrors(t *testing.T) {
	svc, _, fl, h := analysisHarness(t, "6s")
	rev1 := h.repo.Head(t)
	a, _ := h.start(h.config(func(c *Config) {
		c.Repo.PollInterval.Duration = time.Second
		c.HoldRecheck.Duration = 2 * time.Second // should Prometheus lag behind under load
	}), nil, "agent-1")
	h.waitRevision(rev1, 90*time.Second, "staging", "prod", "dr")
	if rec := h.record("staging"); rec.Analysis != apply.AnalysisPassed || len(rec.Measurements) != 1 || !strings.Contains(rec.Measurements[0].String(), "errors on staging: pass") {
		t.Fatalf("staging at version 1: analysis %q, measurements %q; want passed", rec.Analysis, rec.Measurements)
	}

	// Version 2 serves errors as soon as the canary runs it.
	staging := h.clusters.Get("staging").Client
	go func() {
		for ctx := t.Context(); ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
			var cm corev1.ConfigMap
			if staging.Get(ctx, client.ObjectKey{Namespace: fl.Name, Name: "settings"}, &cm) == nil && cm.Data["version"] == "2" {
				svc.Set(0.08, 50*time.Millisecond)
				return
			}
		}
	}()
	rev2 := h.repo.Commit(t, "version 2"+approved, fl.Settings(2))
	testenv.WaitFor(t, 90*time.Second, "the canary's rollback", func() bool {
		rec := h.record("staging")
		return rec.FailedRevision == rev2 && rec.Status == apply.StatusRolledBack
	})
	rec := h.record("staging")
	if rec.Revision != rev1 {
		t.Errorf("staging record at %s, want back at version 1", rec.Revision)
	}
	if !strings.Contains(rec.Reason, "errors on staging: fail") {
		t.Errorf("staging record's reason %q does not name the failed measurement", rec.Reason)
	}
	var cm corev1.ConfigMap
	if err := staging.Get(context.Background(), client.ObjectKey{Namespace: fl.Name, Name: "settings"}, &cm); err != nil || cm.Data["version"] != "1" {
		t.Errorf("staging's settings at version %q (%v), want 1 again", cm.Data["version"], err)
	}
	for _, c := range []string{"prod", "dr"} {
		if r := h.record(c); r.Revision != rev1 {
			t.Errorf("%s at %s, want version 1: production must never see version 2", c, r.Revision)
		}
	}
	// The measurements are metrics too.
	resp, err := http.Get("http://" + a.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`convoy_analysis_runs_total{result="fail",template="errors"} 1`, `convoy_analysis_runs_total{result="pass",template="errors"}`,
		`convoy_analysis_value{cluster="staging",template="errors"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	// Once the rollout has ended, the status says where the canary's
	// analysis stands: failed, with the failing measurement.
	testenv.WaitFor(t, 30*time.Second, "the canary's failed analysis in the status", func() bool {
		for _, w := range a.Status().Waves {
			for _, c := range w.Clusters {
				if c.Name == "staging" && c.Analysis == "failed" && len(c.Measurements) == 1 && strings.Contains(c.Measurements[0].String(), "errors on staging: fail") {
					return true
				}
			}
		}
		return false
	})
	st := a.Status()
	if len(st.Rollouts) == 0 || st.Rollouts[0].Revision != rev2 || st.Rollouts[0].Result != "failed" {
		t.Errorf("status rollouts %+v, want version 2 failed", st.Rollouts)
	}
}

// TestAgentAnalysisHoldsWhilePrometheusIsDown: Prometheus stops as the
// canary runs version 2. Its analysis has no value through the bake, so
// the rollout is held (never passed), production keeps version 1; when
// Prometheus is back, the agent measures again by itself and completes.
func TestAgentAnalysisHoldsWhilePrometheusIsDown(t *testing.T) {
	_, prom, fl, h := analysisHarness(t, "3s")
	rev1 := h.repo.Head(t)
	a, _ := h.start(h.config(func(c *Config) {
		c.Repo.PollInterval.Duration = time.Second
		c.HoldRecheck.Duration = 2 * time.Second
	}), nil, "agent-1")
	h.waitRevision(rev1, 90*time.Second, "staging", "prod", "dr")

	staging := h.clusters.Get("staging").Client
	down := make(chan struct{})
	go func() {
		defer close(down)
		for ctx := t.Context(); ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
			var cm corev1.ConfigMap
			if staging.Get(ctx, client.ObjectKey{Namespace: fl.Name, Name: "settings"}, &cm) == nil && cm.Data["version"] == "2" {
				prom.Stop()
				return
			}
		}
	}()
	rev2 := h.repo.Commit(t, "version 2"+approved, fl.Settings(2))
	testenv.WaitFor(t, 90*time.Second, "the hold on the canary's analysis", func() bool {
		rs := a.Status().Rollouts
		return len(rs) > 0 && rs[0].Revision == rev2 && rs[0].Result == "held"
	})
	<-down
	if reason := a.Status().Rollouts[0].Reason; !strings.Contains(reason, "errors on staging: inconclusive") {
		t.Errorf("held for %q, want the inconclusive measurement", reason)
	}
	if rec := h.record("staging"); rec.Revision != rev2 || rec.Analysis != apply.AnalysisPending {
		t.Errorf("staging at %s with analysis %q, want version 2 pending", rec.Revision, rec.Analysis)
	}
	for _, c := range []string{"prod", "dr"} {
		if r := h.record(c); r.Revision != rev1 {
			t.Errorf("%s at %s while the canary is undecided, want version 1", c, r.Revision)
		}
	}
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitRevision(rev2, 90*time.Second, "staging", "prod", "dr")
	if rec := h.record("staging"); rec.Analysis != apply.AnalysisPassed {
		t.Errorf("staging analysis %q after Prometheus came back, want passed", rec.Analysis)
	}
}
