// Package queue is the coalescing work queue between the webhook, which
// adds work, and the agent, which takes it: a burst of pushes to one branch
// becomes one rollout of the newest commit.
package queue

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind says what an Item asks the agent to do.
type Kind string

// Kinds of work.
const (
	// KindPush rolls out the newest commit of the tracked branch.
	KindPush Kind = "push"
	// KindPlan plans a pull request's head commit (opened, pushed to,
	// relabelled or reviewed).
	KindPlan Kind = "plan"
)

// Item is one unit of work handed from the webhook to the agent.
type Item struct {
	Kind Kind
	// Ref is the pushed ref, refs/heads/<branch> (KindPush).
	Ref string
	// PR is the pull request's number (KindPlan).
	PR int
	// SHA is the newest commit seen for the item's key: the push's after
	// commit, or the pull request's head.
	SHA string
	// Delivery is the X-GitHub-Delivery of the newest event folded in.
	Delivery string
	// First is when the first event of this pending item was queued.
	First time.Time
	// Events counts the events coalesced into this item.
	Events int
}

// Key identifies the work an item stands for: "push:<branch>" or
// "pr:<number>". A queue holds at most one pending item per key.
func (it Item) Key() string {
	switch it.Kind {
	case KindPush:
		return "push:" + strings.TrimPrefix(it.Ref, "refs/heads/")
	case KindPlan:
		return "pr:" + strconv.Itoa(it.PR)
	}
	return string(it.Kind) + ":" + it.Ref
}

// Queue is a coalescing work queue. An item whose key is already pending
// replaces the pending item's SHA and delivery (the newest wins) and bumps its
// event count instead of queueing again, so a burst of pushes becomes one
// rollout of the newest commit. Keys are independent and served in the order
// of their first event. Safe for concurrent use.
type Queue struct {
	mu      sync.Mutex
	order   []string // pending keys, oldest first
	pending map[string]*Item
	added   chan struct{} // closed and replaced when an item is added
}

// New returns an empty queue.
func New() *Queue {
	return &Queue{pending: map[string]*Item{}, added: make(chan struct{})}
}

// Add queues it, or folds it into the pending item with the same key, and
// reports whether it was folded. It never blocks.
func (q *Queue) Add(it Item) (coalesced bool) {
	key := it.Key()
	q.mu.Lock()
	defer q.mu.Unlock()
	if p, ok := q.pending[key]; ok {
		p.SHA, p.Delivery = it.SHA, it.Delivery
		p.Events++
		return true
	}
	it.First = time.Now()
	it.Events = 1
	q.pending[key] = &it
	q.order = append(q.order, key)
	close(q.added) // wake every waiting Get; each looks again
	q.added = make(chan struct{})
	return false
}

// Get removes and returns the oldest pending item, waiting for one until ctx
// is done; then it returns ctx's error.
func (q *Queue) Get(ctx context.Context) (Item, error) {
	for {
		q.mu.Lock()
		if len(q.order) > 0 {
			key := q.order[0]
			q.order[0] = ""
			q.order = q.order[1:]
			it := *q.pending[key]
			delete(q.pending, key)
			q.mu.Unlock()
			return it, nil
		}
		// Taken under the lock, so an Add after this point closes it.
		added := q.added
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return Item{}, ctx.Err()
		case <-added:
		}
	}
}

// Len is the number of pending items.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}
