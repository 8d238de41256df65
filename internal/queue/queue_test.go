package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/queue"
)

func push(branch, sha string) queue.Item {
	return queue.Item{Kind: queue.KindPush, Ref: "refs/heads/" + branch, SHA: sha}
}

func plan(pr int, sha string) queue.Item {
	return queue.Item{Kind: queue.KindPlan, PR: pr, SHA: sha}
}

func TestItemKey(t *testing.T) {
	for _, tc := range []struct {
		item queue.Item
		want string
	}{
		{push("main", "a"), "push:main"},
		{push("release/1.2", "a"), "push:release/1.2"},
		{plan(42, "a"), "pr:42"},
	} {
		if got := tc.item.Key(); got != tc.want {
			t.Errorf("%+v: key %q, want %q", tc.item, got, tc.want)
		}
	}
}

// TestQueueOrder: each key holds one pending item with the newest SHA and a
// count of its events; keys come out in the order of their first event.
func TestQueueOrder(t *testing.T) {
	type got struct {
		Key    string
		SHA    string
		Events int
	}
	for _, tc := range []struct {
		name string
		adds []queue.Item
		want []got
	}{
		{"one", []queue.Item{push("main", "a")}, []got{{"push:main", "a", 1}}},
		{"burst", []queue.Item{push("main", "a"), push("main", "b"), push("main", "c")}, []got{{"push:main", "c", 3}}},
		{"keys independent, by first event", []queue.Item{plan(7, "a"), push("main", "b"), plan(8, "c"), plan(7, "d"), push("main", "e")},
			[]got{{"pr:7", "d", 2}, {"push:main", "e", 2}, {"pr:8", "c", 1}}},
		{"branches are keys", []queue.Item{push("main", "a"), push("dev", "b")}, []got{{"push:main", "a", 1}, {"push:dev", "b", 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := queue.New()
			for _, it := range tc.adds {
				q.Add(it)
			}
			if n := q.Len(); n != len(tc.want) {
				t.Errorf("Len() = %d, want %d", n, len(tc.want))
			}
			var out []got
			for q.Len() > 0 {
				it, err := q.Get(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, got{it.Key(), it.SHA, it.Events})
			}
			if diff := cmp.Diff(tc.want, out); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}
}

// TestQueueFirst: an item keeps the time of its first event; once taken, the
// key starts afresh.
func TestQueueFirst(t *testing.T) {
	q := queue.New()
	if q.Add(push("main", "a")) {
		t.Error("the first Add reports coalesced")
	}
	time.Sleep(5 * time.Millisecond)
	if !q.Add(push("main", "b")) {
		t.Error("the second Add does not report coalesced")
	}
	first, _ := q.Get(context.Background())
	if since := time.Since(first.First); since < 5*time.Millisecond || since > time.Minute {
		t.Errorf("first event %v ago, want the first Add's time", since)
	}
	q.Add(push("main", "c"))
	again, _ := q.Get(context.Background())
	if again.Events != 1 || !again.First.After(first.First) {
		t.Errorf("after Get, the key's next item is %+v, want a fresh one", again)
	}
}

func TestQueueGetWaits(t *testing.T) {
	q := queue.New()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := q.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get on an empty queue = %v, want the context's deadline", err)
	}

	got := make(chan queue.Item)
	go func() {
		it, err := q.Get(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- it
	}()
	select {
	case it := <-got:
		t.Fatalf("Get returned %+v before any Add", it)
	case <-time.After(20 * time.Millisecond):
	}
	q.Add(plan(3, "late"))
	select {
	case it := <-got:
		if it.SHA != "late" {
			t.Errorf("Get = %+v, want the late item", it)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get did not wake on Add")
	}
}

// TestQueueWakesEveryWaiter: items added while several Gets wait reach all
// of them, even when the first Get does not come back for more.
func TestQueueWakesEveryWaiter(t *testing.T) {
	q := queue.New()
	got := make(chan string, 2)
	for range 2 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			it, err := q.Get(ctx)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- it.SHA // and take no more
		}()
	}
	time.Sleep(20 * time.Millisecond) // let both wait
	q.Add(plan(1, "one"))
	q.Add(plan(2, "two"))
	seen := map[string]bool{<-got: true, <-got: true}
	if !seen["one"] || !seen["two"] {
		t.Errorf("waiters got %v, want one and two", seen)
	}
}

// TestQueueConcurrent: producers and consumers at once lose no event, and a
// key is never handed to two consumers for the same events.
func TestQueueConcurrent(t *testing.T) {
	q := queue.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const producers, keys, perKey, consumers = 4, 10, 100, 3

	var mu sync.Mutex
	events := map[string]int{}
	var consumed sync.WaitGroup
	for range consumers {
		consumed.Go(func() {
			for {
				it, err := q.Get(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				events[it.Key()] += it.Events
				mu.Unlock()
			}
		})
	}
	var produced sync.WaitGroup
	for p := range producers {
		produced.Go(func() {
			for i := range keys * perKey {
				q.Add(plan(i%keys, fmt.Sprint(p, i)))
			}
		})
	}
	produced.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		total := 0
		for _, n := range events {
			total += n
		}
		mu.Unlock()
		if total == producers*keys*perKey && q.Len() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of %d events; %d items pending", total, producers*keys*perKey, q.Len())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	consumed.Wait()
	want := map[string]int{}
	for k := range keys {
		want[fmt.Sprintf("pr:%d", k)] = producers * perKey
	}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("events per key (-want +got):\n%s", diff)
	}
}
