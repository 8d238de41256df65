package rollout_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/robfig/cron/v3"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/rollout"
)

// fakeClock is the Runner's Now and Sleep: sleeping moves the clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

// TestReconcileEvery: runs happen at the schedule's times, a plan error is
// reported and the loop goes on, and the loop stops when ctx is done,
// whether between runs or while waiting.
func TestReconcileEvery(t *testing.T) {
	schedule, err := cron.ParseStandard("*/10 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 25, 10, 3, 0, 0, time.UTC)

	t.Run("fires at the cron times", func(t *testing.T) {
		clock := &fakeClock{now: start}
		r := &rollout.Runner{Fleet: &fleet.Fleet{Name: "demo"}, Now: clock.Now, Sleep: clock.Sleep}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var fired []time.Time
		var results []string
		planFn := func(context.Context) (*rollout.Plan, error) {
			fired = append(fired, clock.Now())
			if len(fired) == 2 {
				return nil, errors.New("git unreachable")
			}
			return &rollout.Plan{Revision: "r1"}, nil
		}
		onResult := func(out *rollout.ReconcileOutcome, err error) {
			switch {
			case err != nil:
				results = append(results, "error: "+err.Error())
			default:
				results = append(results, "ok: "+out.Revision)
			}
			if len(results) == 3 {
				cancel()
			}
		}
		done := make(chan struct{})
		go func() { r.ReconcileEvery(ctx, schedule, planFn, onResult); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ReconcileEvery did not return after ctx was cancelled")
		}
		wantFired := []time.Time{start.Add(7 * time.Minute), start.Add(17 * time.Minute), start.Add(27 * time.Minute)}
		if diff := cmp.Diff(wantFired, fired); diff != "" {
			t.Errorf("fire times (-want +got):\n%s", diff)
		}
		wantResults := []string{"ok: r1", "error: reconcile: plan: git unreachable", "ok: r1"}
		if diff := cmp.Diff(wantResults, results); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
	})

	t.Run("stops while waiting", func(t *testing.T) {
		waiting := make(chan time.Duration, 1)
		r := &rollout.Runner{Fleet: &fleet.Fleet{Name: "demo"}, Now: func() time.Time { return start },
			Sleep: func(ctx context.Context, d time.Duration) error {
				waiting <- d
				<-ctx.Done()
				return ctx.Err()
			}}
		ctx, cancel := context.WithCancel(context.Background())
		planned := false
		done := make(chan struct{})
		go func() {
			r.ReconcileEvery(ctx, schedule, func(context.Context) (*rollout.Plan, error) { planned = true; return &rollout.Plan{}, nil }, nil)
			close(done)
		}()
		if d := <-waiting; d != 7*time.Minute {
			t.Errorf("waits %v for the first run, want 7m (10:03 → 10:10)", d)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ReconcileEvery did not return after ctx was cancelled")
		}
		if planned {
			t.Error("a run started after ctx was cancelled")
		}
	})
}
