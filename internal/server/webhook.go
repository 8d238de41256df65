package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
)

// Webhook defaults.
const (
	DefaultMaxBody     = 1 << 20 // GitHub caps payloads at 25 MiB; convoy's events are far smaller
	DefaultReplayTTL   = time.Hour
	DefaultReplayLimit = 10_000
)

// WebhookOptions configure the GitHub webhook endpoint.
type WebhookOptions struct {
	// Secret is the webhook secret; an empty one refuses to start.
	Secret []byte
	// Repo is the repository's full name (owner/repo); events of other
	// repositories are ignored.
	Repo string
	// Branch is the tracked branch; pushes to it start rollouts.
	Branch string
	// Rollouts receives push items, Plans pull-request plan items: two
	// queues, so that plans never wait behind rollouts.
	Rollouts, Plans *Queue
	MaxBody         int64         // DefaultMaxBody when zero
	ReplayTTL       time.Duration // how long a delivery ID is remembered; DefaultReplayTTL when zero
	ReplayLimit     int           // how many IDs at most; DefaultReplayLimit when zero
	Log             *slog.Logger
}

// Webhook is the http.Handler of POST /hooks/github. It accepts only
// deliveries signed with X-Hub-Signature-256 (HMAC-SHA256 of the body with
// the secret), refuses replays of a delivery ID, and hands work to queues
// without doing it inline.
type Webhook struct {
	opts    WebhookOptions
	replays *replayCache
}

// NewWebhook checks opts and returns the handler.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("webhook: the secret is empty; refusing to accept unsigned deliveries")
	}
	if opts.Rollouts == nil || opts.Plans == nil {
		return nil, errors.New("webhook: Rollouts and Plans queues are required")
	}
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.ReplayTTL <= 0 {
		opts.ReplayTTL = DefaultReplayTTL
	}
	if opts.ReplayLimit <= 0 {
		opts.ReplayLimit = DefaultReplayLimit
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Webhook{opts: opts, replays: &replayCache{ttl: opts.ReplayTTL, limit: opts.ReplayLimit, seen: map[string]time.Time{}}}, nil
}

// ServeHTTP handles one delivery.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event, delivery := r.Header.Get("X-GitHub-Event"), r.Header.Get("X-GitHub-Delivery")
	log := h.opts.Log.With("delivery", delivery, "event", event)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, log, http.StatusMethodNotAllowed, "error", "POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(w, log, http.StatusRequestEntityTooLarge, "error", fmt.Sprintf("body over %d bytes", h.opts.MaxBody))
			return
		}
		reply(w, log, http.StatusBadRequest, "error", "cannot read body")
		return
	}
	sig := r.Header.Get("X-Hub-Signature-256")
	if sig == "" {
		msg := "missing X-Hub-Signature-256"
		if r.Header.Get("X-Hub-Signature") != "" {
			msg = "SHA-1 signatures (X-Hub-Signature) are not accepted; sign with SHA-256"
		}
		reply(w, log, http.StatusUnauthorized, "error", msg)
		return
	}
	if !validSignature(sig, body, h.opts.Secret) {
		reply(w, log, http.StatusUnauthorized, "error", "signature does not match")
		return
	}
	if event == "" || delivery == "" {
		reply(w, log, http.StatusBadRequest, "error", "missing X-GitHub-Event or X-GitHub-Delivery")
		return
	}
	// Only a verified delivery is remembered, so forged requests cannot
	// burn IDs that GitHub will send.
	if !h.replays.add(delivery, time.Now()) {
		reply(w, log, http.StatusConflict, "error", "delivery already received")
		return
	}
	res, err := ParseEvent(event, body, h.opts.Repo, h.opts.Branch)
	if err != nil {
		h.replays.forget(delivery) // a redelivery of a fixed payload may come
		reply(w, log, http.StatusBadRequest, "error", err.Error())
		return
	}
	switch {
	case res.Item == nil:
	case res.Item.Kind == "push":
		h.opts.Rollouts.Add(*res.Item)
	default:
		h.opts.Plans.Add(*res.Item)
	}
	code := http.StatusAccepted
	if res.Status == "pong" {
		code = http.StatusOK
	}
	reply(w, log, code, res.Status, res.Reason)
}

// Parsed is what a delivery asks for.
type Parsed struct {
	Status string // "queued", "ignored" or "pong"
	Reason string
	Item   *Item // nil unless Status is "queued"
}

// ParseEvent reads a verified delivery's payload. An error means the payload
// is malformed for its event (a 400); events convoy does not act on are
// ignored, not errors.
func ParseEvent(event string, body []byte, repo, branch string) (Parsed, error) {
	ignore := func(why string) (Parsed, error) { return Parsed{Status: "ignored", Reason: why}, nil }
	switch event {
	case "ping":
		return Parsed{Status: "pong"}, nil
	case "push", "pull_request", "pull_request_review":
	default:
		return ignore("event " + event + " is not used")
	}
	payload, err := github.ParseWebHook(event, body)
	if err != nil {
		return Parsed{}, fmt.Errorf("malformed %s payload: %v", event, err)
	}
	var fullName string
	switch e := payload.(type) {
	case *github.PushEvent:
		fullName = e.GetRepo().GetFullName()
		if repo != "" && !strings.EqualFold(fullName, repo) {
			return ignore("repository " + fullName + " is not tracked")
		}
		ref, after := e.GetRef(), e.GetAfter()
		if ref != "refs/heads/"+branch {
			return ignore("ref " + ref + " is not the tracked branch")
		}
		if e.GetDeleted() || strings.Trim(after, "0") == "" {
			return ignore("branch deleted")
		}
		if !validSHA(after) {
			return Parsed{}, fmt.Errorf("push: after %q is not a commit SHA", after)
		}
		return Parsed{Status: "queued", Item: &Item{Kind: "push", Key: "push:" + branch, Branch: branch, SHA: after}}, nil
	case *github.PullRequestEvent:
		fullName = e.GetRepo().GetFullName()
		switch e.GetAction() {
		case "opened", "synchronize", "reopened", "labeled", "unlabeled", "edited":
		default:
			return ignore("pull_request action " + e.GetAction() + " is not used")
		}
		return planItem(repo, fullName, e.GetPullRequest())
	case *github.PullRequestReviewEvent:
		fullName = e.GetRepo().GetFullName()
		switch e.GetAction() {
		case "submitted", "dismissed", "edited":
		default:
			return ignore("pull_request_review action " + e.GetAction() + " is not used")
		}
		return planItem(repo, fullName, e.GetPullRequest())
	}
	return ignore("event " + event + " is not used")
}

func planItem(repo, fullName string, pr *github.PullRequest) (Parsed, error) {
	if repo != "" && !strings.EqualFold(fullName, repo) {
		return Parsed{Status: "ignored", Reason: "repository " + fullName + " is not tracked"}, nil
	}
	n, sha := pr.GetNumber(), pr.GetHead().GetSHA()
	if n <= 0 || !validSHA(sha) {
		return Parsed{}, fmt.Errorf("pull request without a number or head SHA")
	}
	return Parsed{Status: "queued", Item: &Item{Kind: "plan", Key: "pr:" + strconv.Itoa(n), PR: n, SHA: sha}}, nil
}

func validSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// validSignature checks "sha256=<hex>" against the body's HMAC in constant time.
func validSignature(header string, body, secret []byte) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func reply(w http.ResponseWriter, log *slog.Logger, code int, status, reason string) {
	log.Info("webhook", "code", code, "status", status, "reason", reason)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": status, "reason": reason})
}

// replayCache remembers delivery IDs for a while, bounded in number.
type replayCache struct {
	mu    sync.Mutex
	ttl   time.Duration
	limit int
	seen  map[string]time.Time
	order []string // insertion order, for expiry and eviction
}

// add records id and reports whether it was new.
func (c *replayCache) add(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.order) > 0 {
		oldest := c.order[0]
		at, ok := c.seen[oldest]
		if ok && now.Sub(at) < c.ttl && len(c.order) < c.limit {
			break
		}
		delete(c.seen, oldest)
		c.order = c.order[1:]
	}
	if _, dup := c.seen[id]; dup {
		return false
	}
	c.seen[id] = now
	c.order = append(c.order, id)
	return true
}

func (c *replayCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, id)
}
