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
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/convoy-gitops/convoy/internal/queue"
)

// WebhookPath is where the webhook is mounted.
const WebhookPath = "/hooks/github"

// Webhook defaults.
const (
	// DefaultMaxBody caps a delivery's body. GitHub caps payloads at 25 MB;
	// the events convoy uses are far smaller.
	DefaultMaxBody = 1 << 20
	// DefaultReplayTTL is how long a delivery ID is remembered.
	DefaultReplayTTL = time.Hour
	// DefaultReplayLimit is how many delivery IDs are remembered at most.
	DefaultReplayLimit = 10_000
)

// WebhookOptions configure the GitHub webhook.
type WebhookOptions struct {
	// Secret is the webhook's secret; empty refuses to start.
	Secret []byte
	// Repo is the tracked repository's full name, owner/repo; deliveries
	// about other repositories are ignored.
	Repo string
	// Branch is the tracked branch; pushes to it are rolled out. Default main.
	Branch string
	// Rollouts receives push items and Plans pull-request plan items: two
	// queues, so that plans never wait behind rollouts. Both are required.
	Rollouts, Plans *queue.Queue
	// MaxBody caps a delivery's body in bytes; DefaultMaxBody when zero.
	MaxBody int64
	// ReplayTTL is how long a delivery ID is remembered; DefaultReplayTTL
	// when zero.
	ReplayTTL time.Duration
	// ReplayLimit is how many delivery IDs are remembered at most;
	// DefaultReplayLimit when zero.
	ReplayLimit int
	// Log receives one record per delivery; none when nil.
	Log *slog.Logger
}

// Webhook is the http.Handler of POST /hooks/github. It accepts only
// deliveries signed with X-Hub-Signature-256 (HMAC-SHA256 of the body with
// the secret), refuses a delivery ID it has seen, and queues work without
// doing it. Safe for concurrent use.
type Webhook struct {
	secret   []byte
	target   Target
	maxBody  int64
	rollouts *queue.Queue
	plans    *queue.Queue
	replays  *replayCache
	log      *slog.Logger
}

// NewWebhook checks opts, fills in defaults and returns the handler.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	var problems []error
	if len(opts.Secret) == 0 {
		problems = append(problems, errors.New("webhook secret is empty: refusing to accept unsigned deliveries"))
	}
	if owner, name, ok := strings.Cut(opts.Repo, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		problems = append(problems, fmt.Errorf("webhook repo %q: want owner/repo", opts.Repo))
	}
	if opts.Rollouts == nil || opts.Plans == nil {
		problems = append(problems, errors.New("webhook queues: Rollouts and Plans are required"))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
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
	return &Webhook{
		secret:   append([]byte(nil), opts.Secret...),
		target:   Target{Repo: opts.Repo, Branch: opts.Branch},
		maxBody:  opts.MaxBody,
		rollouts: opts.Rollouts,
		plans:    opts.Plans,
		replays:  newReplayCache(opts.ReplayTTL, opts.ReplayLimit),
		log:      opts.Log,
	}, nil
}

// reply is the JSON body of every answer.
type reply struct {
	Status string `json:"status"` // queued, ignored, pong or error
	Reason string `json:"reason,omitempty"`
	Key    string `json:"key,omitempty"` // the queued work's key
	SHA    string `json:"sha,omitempty"` // the queued commit
	// Coalesced says the delivery was folded into work already queued.
	Coalesced bool `json:"coalesced,omitempty"`
}

// ServeHTTP handles one delivery.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event, delivery := r.Header.Get("X-GitHub-Event"), r.Header.Get("X-GitHub-Delivery")
	// Header values come from anyone until the signature is checked: cut
	// them short in logs.
	log := h.log.With("delivery", clip(delivery), "event", clip(event))
	fail := func(code int, reason string) {
		log.Warn("webhook delivery refused", "code", code, "reason", reason)
		write(w, code, reply{Status: "error", Reason: reason})
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, "method "+clip(r.Method)+" not allowed: POST only")
		return
	}
	sig := r.Header.Get("X-Hub-Signature-256")
	if sig == "" {
		if r.Header.Get("X-Hub-Signature") != "" {
			fail(http.StatusUnauthorized, "X-Hub-Signature (SHA-1) is not accepted: X-Hub-Signature-256 (sha256) is required")
		} else {
			fail(http.StatusUnauthorized, "missing X-Hub-Signature-256: the webhook must have a secret")
		}
		return
	}
	if r.ContentLength > h.maxBody {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is over the %d byte limit", r.ContentLength, h.maxBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the %d byte limit", h.maxBody))
		} else {
			fail(http.StatusBadRequest, "reading the body failed")
		}
		return
	}
	if !validSignature(sig, body, h.secret) {
		fail(http.StatusUnauthorized, "X-Hub-Signature-256 does not match the body")
		return
	}
	if event == "" || delivery == "" {
		fail(http.StatusBadRequest, "missing X-GitHub-Event or X-GitHub-Delivery")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			fail(http.StatusUnsupportedMediaType, "content type "+clip(ct)+": set the webhook's content type to application/json")
			return
		}
	}
	d, err := ParseEvent(event, body, h.target)
	if err != nil {
		log.Warn("webhook delivery malformed", "code", http.StatusBadRequest, "error", err)
		write(w, http.StatusBadRequest, reply{Status: "error", Reason: err.Error()})
		return
	}
	// Only a delivery that is accepted is remembered: a forged one, or
	// one refused (so that GitHub's redelivery, with the same ID, is
	// taken), never uses up its ID.
	if !h.replays.add(delivery, time.Now()) {
		fail(http.StatusConflict, "delivery "+clip(delivery)+" was already received")
		return
	}
	rep := reply{Status: d.Status, Reason: d.Reason}
	code := http.StatusAccepted
	switch d.Status {
	case StatusPong:
		code = http.StatusOK
	case StatusQueued:
		it := *d.Item
		it.Delivery = delivery
		q := h.plans
		if it.Kind == queue.KindPush {
			q = h.rollouts
		}
		rep.Key, rep.SHA, rep.Coalesced = it.Key(), it.SHA, q.Add(it)
	}
	log.Info("webhook delivery", "action", d.Action, "code", code, "status", d.Status,
		"reason", d.Reason, "key", rep.Key, "sha", rep.SHA, "coalesced", rep.Coalesced)
	write(w, code, rep)
}

// validSignature checks an X-Hub-Signature-256 value, "sha256=<hex>", against
// the HMAC-SHA256 of body in constant time.
func validSignature(header string, body, secret []byte) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(body, secret))
}

// Sign is the X-Hub-Signature-256 value GitHub sends with body when the
// webhook's secret is secret: "sha256=" and the HMAC-SHA256 in hex.
func Sign(body, secret []byte) string { return "sha256=" + hex.EncodeToString(mac(body, secret)) }

func mac(body, secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

func write(w http.ResponseWriter, code int, rep reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(rep)
}

// clip cuts an unverified header value to a length fit for a log line.
func clip(s string) string {
	const max = 100
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
