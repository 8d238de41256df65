package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var secret = []byte("webhook-s3cret-value")

type hookEnv struct {
	h        *Webhook
	rollouts *Queue
	plans    *Queue
	logs     *bytes.Buffer
}

func newHook(t *testing.T) *hookEnv {
	t.Helper()
	e := &hookEnv{rollouts: NewQueue(), plans: NewQueue(), logs: &bytes.Buffer{}}
	h, err := NewWebhook(WebhookOptions{Secret: secret, Repo: "acme/fleet-config", Branch: "main",
		Rollouts: e.rollouts, Plans: e.plans, Log: slog.New(slog.NewJSONHandler(&syncWriter{w: e.logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	return e
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func sign256(body []byte, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func payload(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// deliver sends one delivery; headers override the signed defaults.
func (e *hookEnv) deliver(event, id string, body []byte, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", sign256(body, secret))
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func TestWebhookSecurity(t *testing.T) {
	push := payload(t, "push")
	sha1Mac := hmac.New(sha1.New, secret)
	sha1Mac.Write(push)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    int
		reason  string
	}{
		{"bad signature", map[string]string{"X-Hub-Signature-256": sign256(push, []byte("wrong"))}, 401, "does not match"},
		{"SHA-1 only", map[string]string{"X-Hub-Signature-256": "", "X-Hub-Signature": "sha1=" + hex.EncodeToString(sha1Mac.Sum(nil))}, 401, "SHA-256"},
		{"no signature", map[string]string{"X-Hub-Signature-256": ""}, 401, "missing X-Hub-Signature-256"},
		{"not hex", map[string]string{"X-Hub-Signature-256": "sha256=zz"}, 401, "does not match"},
		{"no delivery id", map[string]string{"X-GitHub-Delivery": ""}, 400, "X-GitHub-Delivery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHook(t)
			rec := e.deliver("push", "d-1", push, tc.headers)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.reason) {
				t.Errorf("got %d %s, want %d naming %q", rec.Code, rec.Body, tc.want, tc.reason)
			}
			if e.rollouts.Len() != 0 {
				t.Error("a refused delivery queued a rollout")
			}
		})
	}
}

func TestWebhookReplay(t *testing.T) {
	e := newHook(t)
	push := payload(t, "push")
	// A forged delivery must not burn the ID GitHub will use.
	if rec := e.deliver("push", "d-42", push, map[string]string{"X-Hub-Signature-256": sign256(push, []byte("forged"))}); rec.Code != 401 {
		t.Fatalf("forged: %d", rec.Code)
	}
	if rec := e.deliver("push", "d-42", push, nil); rec.Code != 202 {
		t.Fatalf("first delivery: %d %s", rec.Code, rec.Body)
	}
	if rec := e.deliver("push", "d-42", push, nil); rec.Code != 409 {
		t.Fatalf("replay: %d %s, want 409", rec.Code, rec.Body)
	}
	if n := e.rollouts.Len(); n != 1 {
		t.Errorf("%d rollouts queued, want 1", n)
	}
}

func TestWebhookOversize(t *testing.T) {
	e := newHook(t)
	e.h.opts.MaxBody = 1024
	body := bytes.Repeat([]byte("x"), 4096)
	r := &countingReader{r: bytes.NewReader(body)}
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", r)
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "big")
	req.Header.Set("X-Hub-Signature-256", sign256(body, secret))
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("got %d, want 413", rec.Code)
	}
	if r.n > 1024+512*8 { // the cap plus io.ReadAll's last buffer
		t.Errorf("read %d bytes of an oversize body", r.n)
	}
}

type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestWebhookEvents(t *testing.T) {
	push := payload(t, "push")
	otherBranch := bytes.Replace(push, []byte(`"refs/heads/main"`), []byte(`"refs/heads/feature"`), 1)
	otherRepo := bytes.Replace(push, []byte(`"acme/fleet-config"`), []byte(`"acme/other"`), 1)
	deleted := bytes.Replace(push, []byte(`"deleted": false`), []byte(`"deleted": true`), 1)
	closed := bytes.Replace(payload(t, "pull_request"), []byte(`"action": "opened"`), []byte(`"action": "closed"`), 1)
	for _, tc := range []struct {
		name, event string
		body        []byte
		want        int
		status      string
		rollout     *Item
		plan        *Item
	}{
		{"ping", "ping", payload(t, "ping"), 200, "pong", nil, nil},
		{"push to main", "push", push, 202, "queued", &Item{Kind: "push", Key: "push:main", Branch: "main", SHA: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", Events: 1}, nil},
		{"push to another branch", "push", otherBranch, 202, "ignored", nil, nil},
		{"push to another repo", "push", otherRepo, 202, "ignored", nil, nil},
		{"branch deleted", "push", deleted, 202, "ignored", nil, nil},
		{"pull request opened", "pull_request", payload(t, "pull_request"), 202, "queued", nil, &Item{Kind: "plan", Key: "pr:42", PR: 42, SHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", Events: 1}},
		{"pull request closed", "pull_request", closed, 202, "ignored", nil, nil},
		{"review submitted", "pull_request_review", payload(t, "pull_request_review"), 202, "queued", nil, &Item{Kind: "plan", Key: "pr:42", PR: 42, SHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", Events: 1}},
		{"unknown event", "issues", []byte(`{"action":"opened"}`), 202, "ignored", nil, nil},
		{"malformed push", "push", []byte(`{"ref": 7`), 400, "error", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHook(t)
			rec := e.deliver(tc.event, "d-"+tc.name, tc.body, nil)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), `"status":"`+tc.status+`"`) {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body, tc.want, tc.status)
			}
			for q, want := range map[*Queue]*Item{e.rollouts: tc.rollout, e.plans: tc.plan} {
				if want == nil {
					if q.Len() != 0 {
						t.Errorf("unexpected item queued")
					}
					continue
				}
				got, err := q.Get(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(*want, got, cmpopts.IgnoreFields(Item{}, "First")); diff != "" {
					t.Errorf("queued item (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestWebhookBurst: ten rapid pushes become one rollout of the newest commit.
func TestWebhookBurst(t *testing.T) {
	e := newHook(t)
	push := payload(t, "push")
	var last string
	for i := range 10 {
		last = fmt.Sprintf("%040x", i+1)
		body := bytes.Replace(push, []byte("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"), []byte(last), -1)
		if rec := e.deliver("push", fmt.Sprintf("burst-%d", i), body, nil); rec.Code != 202 {
			t.Fatalf("push %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if n := e.rollouts.Len(); n != 1 {
		t.Fatalf("%d rollouts queued, want 1", n)
	}
	it, _ := e.rollouts.Get(context.Background())
	if it.SHA != last || it.Events != 10 {
		t.Errorf("queued %s after %d events, want %s after 10", it.SHA, it.Events, last)
	}
	if strings.Contains(e.logs.String(), string(secret)) || strings.Contains(e.logs.String(), "sha256=") {
		t.Errorf("logs contain the secret or a signature:\n%s", e.logs)
	}
	if !strings.Contains(e.logs.String(), `"delivery":"burst-9"`) {
		t.Errorf("logs do not name the delivery:\n%s", e.logs)
	}
}

func TestNewWebhookRefusesEmptySecret(t *testing.T) {
	if _, err := NewWebhook(WebhookOptions{Rollouts: NewQueue(), Plans: NewQueue()}); err == nil || !strings.Contains(err.Error(), "secret is empty") {
		t.Errorf("err = %v, want a refusal naming the empty secret", err)
	}
}

func TestQueueConcurrent(t *testing.T) {
	q := NewQueue()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const keys, perKey = 20, 50
	var wg sync.WaitGroup
	for k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perKey {
				q.Add(Item{Kind: "plan", Key: fmt.Sprintf("pr:%d", k), PR: k, SHA: fmt.Sprint(i)})
			}
		}()
	}
	wg.Wait()
	events := 0
	seen := map[string]bool{}
	for q.Len() > 0 {
		it, err := q.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seen[it.Key] {
			t.Errorf("key %s served twice", it.Key)
		}
		seen[it.Key] = true
		events += it.Events
		if it.SHA != fmt.Sprint(perKey-1) {
			t.Errorf("key %s: SHA %s, want the newest %d", it.Key, it.SHA, perKey-1)
		}
	}
	if len(seen) != keys || events != keys*perKey {
		t.Errorf("served %d keys with %d events, want %d and %d: an event was lost", len(seen), events, keys, keys*perKey)
	}
	// Get waits for work and honours cancellation.
	go func() { time.Sleep(50 * time.Millisecond); q.Add(Item{Key: "push:main", SHA: "late"}) }()
	if it, err := q.Get(ctx); err != nil || it.SHA != "late" {
		t.Errorf("Get = %+v, %v; want the late item", it, err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if _, err := q.Get(short); err == nil {
		t.Error("Get on an empty queue returned without an item or an error")
	}
}

func FuzzWebhookPayload(f *testing.F) {
	for _, name := range []string{"push", "pull_request", "pull_request_review", "ping"} {
		data, err := os.ReadFile("testdata/" + name + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(name, data)
	}
	f.Add("push", []byte(`{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000"}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		res, err := ParseEvent(event, body, "acme/fleet-config", "main")
		if err != nil {
			return // a 400
		}
		switch res.Status {
		case "queued":
			if res.Item == nil || res.Item.Key == "" || !validSHA(res.Item.SHA) {
				t.Fatalf("queued without a usable item: %+v", res.Item)
			}
		case "ignored", "pong":
			if res.Item != nil {
				t.Fatalf("%s with an item", res.Status)
			}
		default:
			t.Fatalf("unknown status %q", res.Status)
		}
	})
}
