package server

import (
	"testing"
	"time"
)

func TestReplayCache(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	min := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	c := newReplayCache(time.Hour, 3)
	for _, step := range []struct {
		id   string
		at   time.Time
		want bool // new
	}{
		{"a", min(0), true},
		{"a", min(1), false},  // a replay
		{"b", min(2), true},   // a, b
		{"a", min(59), false}, // still remembered
		{"a", min(60), true},  // expired, so new again: b, a
		{"c", min(61), true},  // b, a, c: at the limit
		{"b", min(61), false}, // a replay of the oldest at the limit is still refused
		{"d", min(61), true},  // over the limit: b is forgotten; a, c, d
		{"b", min(61), true},  // so b is new again, and a is forgotten: c, d, b
		{"c", min(61), false}, // c, d and b are remembered
		{"d", min(61), false},
		{"b", min(61), false},
		{"a", min(61), true},
	} {
		if got := c.add(step.id, step.at); got != step.want {
			t.Errorf("add(%s) at %s = %v, want %v", step.id, step.at.Format("15:04"), got, step.want)
		}
		if n := c.len(); n > 3 {
			t.Errorf("after add(%s): %d IDs remembered, over the limit 3", step.id, n)
		}
	}
}

// TestReplayCacheBounded: a flood of distinct IDs keeps the cache at its limit.
func TestReplayCacheBounded(t *testing.T) {
	c := newReplayCache(time.Hour, 100)
	now := time.Now()
	for i := range 10_000 {
		c.add(string(rune(i)), now)
	}
	if n := c.len(); n != 100 || len(c.seen) != 100 {
		t.Errorf("%d IDs in order, %d in the map, want the limit 100", n, len(c.seen))
	}
}
