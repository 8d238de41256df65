package main

import (
	"sync"
	"time"
)

// demoClock runs like the wall clock from a chosen start, and can jump
// forward (Set); timers taken with After fire when the clock passes them,
// jumps included.
type demoClock struct {
	mu     sync.Mutex
	base   time.Time // the clock's time at real time ref
	ref    time.Time
	change chan struct{} // closed and replaced on each jump
}

func newDemoClock(start time.Time) *demoClock {
	return &demoClock{base: start, ref: time.Now(), change: make(chan struct{})}
}

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Since(c.ref))
}

// Set jumps the clock to t.
func (c *demoClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.ref = t, time.Now()
	close(c.change)
	c.change = make(chan struct{})
}

func (c *demoClock) After(d time.Duration) <-chan time.Time {
	out := make(chan time.Time, 1)
	target := c.Now().Add(d)
	go func() {
		for {
			c.mu.Lock()
			now, jumped := c.base.Add(time.Since(c.ref)), c.change
			c.mu.Unlock()
			if !now.Before(target) {
				out <- now
				return
			}
			select {
			case <-time.After(target.Sub(now)):
			case <-jumped:
			}
		}
	}()
	return out
}
