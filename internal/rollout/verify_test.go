package rollout_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/analysis"
	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/rollout"
)

// The wave engine with analyses, in memory: a clock that sleeps by moving
// forward, and measurements a script gives per cluster.

// metrics scripts what an analysis measures: per cluster, the verdicts of
// its successive measurements ("p" pass, "f" fail, "i" inconclusive); the
// last one repeats.
type metrics struct {
	mu     sync.Mutex
	now    time.Time
	script map[string]string
	taken  map[string]int
	at     []time.Duration // when each measurement was taken, from the start
	start  time.Time
}

func (m *metrics) analyze(_ context.Context, c *fleet.Cluster, a *fleet.Analysis, d fleet.QueryData, at time.Time) analysis.Measurement {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.script[c.Name]
	i := min(m.taken[c.Name], len(s)-1)
	m.taken[c.Name]++
	m.at = append(m.at, m.now.Sub(m.start)) // the runner's schedule, on the clock its sleeps move
	v := map[byte]string{'p': analysis.Pass, 'f': analysis.Fail, 'i': analysis.Inconclusive}[s[i]]
	val := 0.01
	if v == analysis.Fail {
		val = 0.08
	}
	ms := analysis.Measurement{Analysis: a.Name, Cluster: c.Name, Condition: a.Condition.Text, At: at, Verdict: v}
	if v != analysis.Inconclusive {
		ms.Value = &val
	} else {
		ms.Reason = "the query returned no series"
	}
	if d.Cluster != c.Name || d.Wave == "" || d.Revision == "" {
		ms.Verdict, ms.Reason = analysis.Fail, "query data without cluster, wave or revision"
	}
	return ms
}

// analyzed is an engine whose canary wave (staging) bakes 1m under the
// error-rate analysis (every 10s, 3 in a row), before prod.
func analyzed(t *testing.T, script string) (*engineEnv, *metrics) {
	e := newEngine(t, []fleet.Wave{wave("canary", "staging", bake(time.Minute)), wave("main", "prod")})
	cond, err := fleet.ParseCondition("< 0.05")
	if err != nil {
		t.Fatal(err)
	}
	e.f.Rollout.Waves[0].Analysis = []string{"error-rate"}
	e.f.Rollout.Analyses = map[string]*fleet.Analysis{"error-rate": {Name: "error-rate", Condition: cond,
		Interval: 10 * time.Second, ConsecutiveSuccesses: 3, Inconclusive: fleet.InconclusiveHold}}
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	m := &metrics{now: start, start: start, script: map[string]string{"staging": script}, taken: map[string]int{}}
	e.runner.Analyze = m.analyze
	e.runner.Now = func() time.Time { m.mu.Lock(); defer m.mu.Unlock(); return m.now }
	e.runner.Sleep = func(_ context.Context, d time.Duration) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.now = m.now.Add(d)
		return nil
	}
	return e, m
}

func TestAnalysisPassesThroughTheBake(t *testing.T) {
	e, m := analyzed(t, "p")
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if err != nil || out.Result != rollout.Done {
		t.Fatalf("result %v, %v; want done", out.Result, err)
	}
	// Every 10s from the canary's health through its 1m bake: 7 measurements.
	if len(m.at) != 7 || m.at[0] != 0 || m.at[6] != time.Minute {
		t.Errorf("measured at %v, want every 10s from 0 to 1m", m.at)
	}
	if got := e.runs(); got["prod"] != "r1 applied" {
		t.Errorf("prod %q, want r1 applied after the canary passed", got["prod"])
	}
	rec := e.clusters["staging"].record
	if rec.Analysis != apply.AnalysisPassed || len(rec.Measurements) != 1 || !strings.Contains(rec.Measurements[0].String(), "error-rate on staging: pass (0.01 < 0.05)") {
		t.Errorf("staging record: analysis %q, measurements %q", rec.Analysis, rec.Measurements)
	}
}

func TestAnalysisFailureRollsTheWaveBack(t *testing.T) {
	e, m := analyzed(t, "pf")
	e.at("staging", "r0")
	e.at("prod", "r0")
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if !errors.Is(err, rollout.ErrAnalysisFailed) || out.Result != rollout.Failed {
		t.Fatalf("result %v, %v; want failed by the analysis", out.Result, err)
	}
	if len(m.at) != 2 || m.at[1] != 10*time.Second {
		t.Errorf("measured at %v, want the failure at 10s to end it", m.at)
	}
	got := e.runs()
	if got["staging"] != "r0 rolled-back" || got["prod"] != "r0 applied" {
		t.Errorf("runs %v, want staging rolled back to r0 and prod never written", got)
	}
	if e.clusters["prod"].applies != 0 {
		t.Errorf("prod was applied %d times, want never", e.clusters["prod"].applies)
	}
	rec := e.clusters["staging"].record
	if rec.FailedRevision != "r1" || !strings.Contains(rec.Reason, "error-rate on staging: fail (0.08 < 0.05)") {
		t.Errorf("staging record: failed %q, reason %q; want r1 failed by the measurement", rec.FailedRevision, rec.Reason)
	}
	// The failed revision is not retried.
	e.clusters["staging"].applies = 0
	if _, err := e.runner.Run(context.Background(), e.plan("r1", nil)); err == nil || e.clusters["staging"].applies != 0 {
		t.Errorf("rerun of r1: %v, %d applies; want it refused without applying", err, e.clusters["staging"].applies)
	}
}

func TestAnalysisInconclusiveHolds(t *testing.T) {
	e, _ := analyzed(t, "i")
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if !errors.Is(err, rollout.ErrHeld) || out.Result != rollout.Held || !strings.Contains(out.Reason, "no series") {
		t.Fatalf("result %v (%s), %v; want held naming the empty result", out.Result, out.Reason, err)
	}
	if got := e.runs(); got["prod"] != " -" {
		t.Errorf("prod %q, want untouched while the canary is undecided", got["prod"])
	}
	if rec := e.clusters["staging"].record; rec.Analysis != apply.AnalysisPending || rec.Revision != "r1" {
		t.Errorf("staging record: %q at %s, want pending at r1", rec.Analysis, rec.Revision)
	}
}

// TestAnalysisHeldThenPasses: a held analysis is measured again on the next
// run (the agent's re-evaluation), without applying the canary again, and
// the rollout then completes.
func TestAnalysisHeldThenPasses(t *testing.T) {
	e, m := analyzed(t, "i")
	if _, err := e.runner.Run(context.Background(), e.plan("r1", nil)); !errors.Is(err, rollout.ErrHeld) {
		t.Fatalf("first run: %v, want held", err)
	}
	applies := e.clusters["staging"].applies
	m.mu.Lock()
	m.script["staging"] = "p"
	m.mu.Unlock()
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if err != nil || out.Result != rollout.Done {
		t.Fatalf("second run: %v, %v; want done", out.Result, err)
	}
	if e.clusters["staging"].applies != applies {
		t.Errorf("the canary was applied again on the re-evaluation")
	}
	if got := e.runs(); got["prod"] != "r1 applied" {
		t.Errorf("prod %q, want r1 applied", got["prod"])
	}
}

// TestAnalysisNeedsConsecutiveSuccesses: one failure tolerated, and three
// passes in a row after it are needed even past the bake.
func TestAnalysisNeedsConsecutiveSuccesses(t *testing.T) {
	e, m := analyzed(t, "ppppppfp")
	e.f.Rollout.Analyses["error-rate"].FailureLimit = 1
	out, err := e.runner.Run(context.Background(), e.plan("r1", nil))
	if err != nil || out.Result != rollout.Done {
		t.Fatalf("result %v, %v; want done", out.Result, err)
	}
	// The failure at 1m resets the streak: passes at 1m10, 1m20, 1m30.
	if n := len(m.at); n != 10 || m.at[n-1] != 90*time.Second {
		t.Errorf("measured at %v, want until 1m30", m.at)
	}
}

// TestPlanNamesTheGates: convoy plan says which analyses gate which wave,
// in text and in the pull request's comment.
func TestPlanNamesTheGates(t *testing.T) {
	e, _ := analyzed(t, "p")
	doc := e.plan("r1", nil).Document()
	want := []string{"analysis gates wave canary: staging: error-rate (< 0.05, every 10s)"}
	if got := rollout.AnalysisLines(doc); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("analysis lines %q, want %q", got, want)
	}
	if md := rollout.Markdown(doc); !strings.Contains(md, `- analysis gates wave canary: staging: error-rate \(&lt; 0.05, every 10s\)`) {
		t.Errorf("the comment does not name the gate:\n%s", md)
	}
}
