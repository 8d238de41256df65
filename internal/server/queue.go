package server

import (
	"context"
	"sync"
	"time"
)

// Item is one unit of work handed from the webhook to the agent: a rollout
// of a branch's newest commit, or a plan of a pull request's head.
type Item struct {
	Kind   string // "push" or "plan"
	Key    string // "push:<branch>" or "pr:<number>": at most one pending item per key
	Branch string // push
	PR     int    // plan
	SHA    string // the newest commit seen for the key
	// First is when the first event of this pending item arrived; Events
	// counts the events coalesced into it.
	First  time.Time
	Events int
}

// Queue is a coalescing work queue: a new item for a key that is already
// pending replaces its SHA (the newest wins) instead of queueing again, so a
// burst of pushes becomes one rollout of the newest commit. Keys are served
// in the order their first event arrived. Safe for concurrent use.
type Queue struct {
	mu      sync.Mutex
	order   []string
	pending map[string]*Item
	ready   chan struct{} // signalled when an item is added
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{pending: map[string]*Item{}, ready: make(chan struct{}, 1)}
}

// Add queues it, or folds it into the pending item with the same key.
func (q *Queue) Add(it Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p, ok := q.pending[it.Key]; ok {
		p.SHA = it.SHA
		p.Events++
		return
	}
	if it.First.IsZero() {
		it.First = time.Now()
	}
	it.Events = 1
	q.pending[it.Key] = &it
	q.order = append(q.order, it.Key)
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Get removes and returns the oldest pending item, waiting for one until
// ctx is done.
func (q *Queue) Get(ctx context.Context) (Item, error) {
	for {
		q.mu.Lock()
		if len(q.order) > 0 {
			key := q.order[0]
			q.order = q.order[1:]
			it := *q.pending[key]
			delete(q.pending, key)
			more := len(q.order) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.ready <- struct{}{}:
				default:
				}
			}
			return it, nil
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return Item{}, ctx.Err()
		case <-q.ready:
		}
	}
}

// Len is the number of pending items.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}
