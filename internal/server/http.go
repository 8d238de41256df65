package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/convoy-gitops/convoy/internal/metrics"
)

// Timeouts and limits of the HTTP server. Every client is a probe, a
// scraper, a browser or GitHub, all of which send small requests quickly.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// Options configure the HTTP server. Only Addr is required; a route whose
// handler or function is nil is not served (404), except /readyz, which is
// then always ready.
type Options struct {
	// Addr is the TCP address to listen on, e.g. ":8080", or "127.0.0.1:0"
	// for a free port.
	Addr string
	// Webhook is mounted at WebhookPath (POST) when non-nil; its answers
	// are counted in Metrics.
	Webhook http.Handler
	// Metrics is served at /metrics, from its registry.
	Metrics *metrics.Metrics
	// Status makes the document of /api/status (JSON) and / (HTML). It is
	// called once per request and must be safe for concurrent use.
	Status func() Status
	// StatusToken, when set, is the bearer token / and /api/status require:
	// they name clusters, revisions and pull requests.
	StatusToken string
	// Ready says whether the agent is ready (/readyz): nil, or why not.
	Ready func() error
	// Log receives the server's own records; none when nil.
	Log *slog.Logger
}

// Server is convoy's HTTP front: health, readiness, metrics, the GitHub
// webhook and the status page.
type Server struct {
	srv      *http.Server
	handler  http.Handler
	log      *slog.Logger
	draining atomic.Bool // set by Shutdown: /readyz answers 503

	mu      sync.Mutex
	started bool
	served  chan struct{} // closed when Serve has returned
}

// New checks opts and builds the server's routes; it does not listen.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		return nil, errors.New("http server: listen address is empty")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: opts.Log}
	mux := http.NewServeMux()
	// Patterns with a method answer other methods with 405 and an Allow
	// header; GET patterns serve HEAD too.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.Handle("GET /readyz", s.readyHandler(opts.Ready))
	if reg := opts.Metrics.Registry(); reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(opts.Log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
			Registry:      reg,
		}))
	}
	if opts.Webhook != nil {
		mux.Handle("POST "+WebhookPath, countDeliveries(opts.Webhook, opts.Metrics))
	}
	if opts.Status != nil {
		mux.Handle("GET /api/status", bearer(opts.StatusToken, statusJSONHandler(opts.Status, opts.Log)))
		mux.Handle("GET /{$}", bearer(opts.StatusToken, statusPageHandler(opts.Status, opts.Log)))
	}
	s.handler = mux
	s.srv = &http.Server{
		Addr:              opts.Addr,
		Handler:           mux,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// bearer serves h only to requests with "Authorization: Bearer token",
// compared in constant time; everything when token is empty.
func bearer(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="convoy"`)
			writeText(w, http.StatusUnauthorized, "unauthorized: this page needs the agent's status token (Authorization: Bearer ...)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Handler is the server's router, for tests with httptest and for mounting
// elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on the configured address and serves in a goroutine until
// Shutdown. It returns the address bound, which tells the port chosen for
// ":0".
func (s *Server) Start() (addr string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return "", fmt.Errorf("http server on %s: already started", s.srv.Addr)
	}
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return "", fmt.Errorf("http server: listen on %s: %w", s.srv.Addr, err)
	}
	s.started = true
	s.served = make(chan struct{})
	addr = ln.Addr().String()
	s.log.Info("http server listening", "addr", addr)
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "addr", addr, "error", err)
		}
	}()
	return addr, nil
}

// Shutdown stops the server gracefully: /readyz turns 503, the listener
// closes at once (new connections are refused), and in-flight requests run
// to their end. If ctx ends first, the remaining connections are closed and
// ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	err := s.srv.Shutdown(ctx)
	if err != nil {
		// Requests still running past the deadline are cut off rather than
		// left behind a server that says it has stopped.
		_ = s.srv.Close()
		err = fmt.Errorf("http server shutdown: in-flight requests cut off: %w", err)
	}
	s.mu.Lock()
	served := s.served
	s.mu.Unlock()
	if served != nil {
		<-served
	}
	return err
}

func (s *Server) readyHandler(ready func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			writeText(w, http.StatusServiceUnavailable, "shutting down")
			return
		}
		if ready != nil {
			if err := ready(); err != nil {
				writeText(w, http.StatusServiceUnavailable, err.Error())
				return
			}
		}
		writeText(w, http.StatusOK, "ok")
	})
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text + "\n"))
}

// webhookEvents are the event label values of convoy_webhook_deliveries_total;
// any other X-GitHub-Event counts as "other", since the header is not
// verified and an open label would let anyone grow the series without bound.
var webhookEvents = map[string]bool{
	"ping": true, "push": true, "pull_request": true, "pull_request_review": true,
}

// countDeliveries counts each answer of h by event and status code.
func countDeliveries(h http.Handler, m *metrics.Metrics) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		event := r.Header.Get("X-GitHub-Event")
		if !webhookEvents[event] {
			event = "other"
		}
		m.WebhookDelivery(event, rec.code())
	})
}

// statusRecorder remembers the status code a handler writes.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 { // 1xx answers are not the final one
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// code is the status written, 200 when the handler wrote nothing.
func (r *statusRecorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}
