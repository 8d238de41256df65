package server

import (
	"sync"
	"time"
)

// replayCache remembers delivery IDs for a while, and at most limit of them,
// so that a captured delivery cannot be sent again. It forgets the oldest
// first.
type replayCache struct {
	mu    sync.Mutex
	ttl   time.Duration
	limit int
	seen  map[string]time.Time
	order []string // the keys of seen, oldest first
}

func newReplayCache(ttl time.Duration, limit int) *replayCache {
	return &replayCache{ttl: ttl, limit: limit, seen: make(map[string]time.Time)}
}

// add records id at now and reports whether it was new (not seen within the
// TTL). Check and record are one step, so two concurrent copies of a
// delivery cannot both pass.
func (c *replayCache) add(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.order) > 0 && now.Sub(c.seen[c.order[0]]) >= c.ttl {
		c.drop()
	}
	if _, dup := c.seen[id]; dup {
		return false
	}
	// At the limit the oldest ID is forgotten (only after the duplicate
	// check, so a replay of the oldest ID is still refused).
	for len(c.order) >= c.limit {
		c.drop()
	}
	c.seen[id] = now
	c.order = append(c.order, id)
	return true
}

// drop forgets the oldest ID.
func (c *replayCache) drop() {
	delete(c.seen, c.order[0])
	c.order[0] = ""
	c.order = c.order[1:]
}

// len is the number of remembered IDs.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.order)
}
