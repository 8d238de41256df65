package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/convoy-gitops/convoy/internal/metrics"
	"github.com/convoy-gitops/convoy/internal/server"
)

// serve starts a server for opts on a free loopback port, stopped at the
// end of the test, and returns it with its base URL.
func serve(t *testing.T, opts server.Options) (*server.Server, string) {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	s, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s, "http://" + addr
}

// client is a client of its own, without connections shared between tests.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// call sends a request and returns the status, headers and body.
func call(t *testing.T, c *http.Client, method, url string, body []byte, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, string(data)
}

func TestHealthz(t *testing.T) {
	// Alive even when not ready.
	_, base := serve(t, server.Options{Ready: func() error { return errors.New("not yet") }})
	code, _, body := call(t, client(t), http.MethodGet, base+"/healthz", nil, nil)
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", code, body)
	}
}

func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ready    func() error
		wantCode int
		wantBody string
	}{
		{"no check", nil, 200, "ok\n"},
		{"ready", func() error { return nil }, 200, "ok\n"},
		{"not ready", func() error { return errors.New("source: first fetch of https://git.example.com/fleet.git pending") },
			503, "source: first fetch of https://git.example.com/fleet.git pending\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := serve(t, server.Options{Ready: tc.ready})
			code, _, body := call(t, client(t), http.MethodGet, base+"/readyz", nil, nil)
			if code != tc.wantCode || body != tc.wantBody {
				t.Errorf("GET /readyz = %d %q, want %d %q", code, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestNewNeedsAddr(t *testing.T) {
	if _, err := server.New(server.Options{}); err == nil {
		t.Error("New without Addr succeeded")
	}
}

func TestStart(t *testing.T) {
	s, base := serve(t, server.Options{})
	if _, err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	taken := strings.TrimPrefix(base, "http://")
	other, err := server.New(server.Options{Addr: taken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Start(); err == nil || !strings.Contains(err.Error(), taken) {
		t.Errorf("Start on the taken address %s: error %v, want one naming the address", taken, err)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	hook := newHook(t, 0)
	_, base := serve(t, server.Options{
		Webhook: hook.h, Metrics: metrics.New(),
		Status: func() server.Status { return server.Status{} },
	})
	for _, tc := range []struct {
		method, path, allow string
	}{
		{http.MethodPost, "/healthz", "GET"},
		{http.MethodPost, "/readyz", "GET"},
		{http.MethodDelete, "/metrics", "GET"},
		{http.MethodGet, server.WebhookPath, "POST"},
		{http.MethodPut, "/api/status", "GET"},
		{http.MethodPost, "/", "GET"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			code, h, _ := call(t, client(t), tc.method, base+tc.path, nil, nil)
			if code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", tc.method, tc.path, code)
			}
			if allow := h.Get("Allow"); !strings.Contains(allow, tc.allow) {
				t.Errorf("%s %s: Allow %q, want it to list %s", tc.method, tc.path, allow, tc.allow)
			}
		})
	}
}

func TestUnknownPath(t *testing.T) {
	// Nothing is mounted but health and readiness.
	_, base := serve(t, server.Options{})
	for _, path := range []string{"/nope", "/metrics", "/api/status", "/", server.WebhookPath} {
		if code, _, _ := call(t, client(t), http.MethodGet, base+path, nil, nil); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}
}

// metricNames are the contract of /metrics.
var metricNames = []string{
	"convoy_rollouts_total",
	"convoy_wave_duration_seconds",
	"convoy_cluster_apply_duration_seconds",
	"convoy_objects_applied_total",
	"convoy_objects_pruned_total",
	"convoy_policy_decisions_total",
	"convoy_holds_active",
	"convoy_git_fetch_duration_seconds",
	"convoy_git_fetch_errors_total",
	"convoy_git_last_success_timestamp_seconds",
	"convoy_github_api_calls_total",
	"convoy_github_rate_limit_remaining",
	"convoy_drift_corrections_total",
	"convoy_webhook_deliveries_total",
	"convoy_leader",
}

func TestMetricsEndpoint(t *testing.T) {
	m := metrics.New()
	m.RolloutFinished(metrics.ResultDone)
	m.ObserveWave("canary", time.Minute)
	m.ObserveClusterApply("staging", time.Second, 3, 1)
	m.PolicyDecision("hold", "convoy.business_hours")
	m.SetHoldsActive(1)
	m.ObserveGitFetch(time.Second, nil)
	m.ObserveGitFetch(time.Second, errors.New("timeout"))
	m.DriftCorrected("staging", 1)
	m.WebhookDelivery("push", 202)
	m.SetLeader(true)
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Remaining", "4999")
	}))
	defer gh.Close()
	resp, err := (&http.Client{Transport: m.GitHubTransport(gh.Client().Transport)}).Get(gh.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	_, base := serve(t, server.Options{Metrics: m})
	code, h, body := call(t, client(t), http.MethodGet, base+"/metrics", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d:\n%s", code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text exposition format", ct)
	}
	for _, name := range append(metricNames, "go_goroutines", "process_start_time_seconds") {
		// A sample line, not only the HELP text.
		if !regexp.MustCompile(`(?m)^` + name + `(_bucket|_count|_sum)?[{ ]`).MatchString(body) {
			t.Errorf("/metrics has no sample of %s", name)
		}
	}
	if !strings.Contains(body, `convoy_policy_decisions_total{package="convoy.business_hours",verdict="hold"} 1`) {
		t.Errorf("/metrics lacks the hold decision:\n%s", body)
	}
}

// signedDelivery is a webhook delivery over HTTP, signed with secret.
func signedDelivery(event, id string, body []byte) http.Header {
	return http.Header{
		"Content-Type":        {"application/json"},
		"X-Github-Event":      {event},
		"X-Github-Delivery":   {id},
		"X-Hub-Signature-256": {sign256(body, secret)},
	}
}

func TestWebhookDeliveriesCounted(t *testing.T) {
	m := metrics.New()
	hook := newHook(t, 0)
	_, base := serve(t, server.Options{Webhook: hook.h, Metrics: m})
	c := client(t)
	ping := payload(t, "ping")
	forged := signedDelivery("push", "d-forged", ping)
	forged.Set("X-Hub-Signature-256", sign256(ping, []byte("not the secret")))
	unknown := signedDelivery("issues", "d-issues", []byte(`{}`))
	// An unverified header must not mint a series of its own.
	junk := signedDelivery("x-<junk>", "d-junk", ping)
	junk.Set("X-Hub-Signature-256", "sha256=00")

	for _, d := range []struct {
		header http.Header
		body   []byte
		want   int
	}{
		{signedDelivery("ping", "d-1", ping), ping, 200},
		{signedDelivery("ping", "d-1", ping), ping, 409}, // replayed
		{signedDelivery("ping", "d-2", ping), ping, 200},
		{forged, ping, 401},
		{unknown, []byte(`{}`), 202},
		{junk, ping, 401},
	} {
		code, _, body := call(t, c, http.MethodPost, base+server.WebhookPath, d.body, d.header)
		if code != d.want {
			t.Fatalf("delivery %s of %s = %d %s, want %d", d.header.Get("X-Github-Delivery"), d.header.Get("X-Github-Event"), code, body, d.want)
		}
	}
	want := `
# HELP convoy_webhook_deliveries_total GitHub webhook deliveries, by event and the HTTP status code of the answer.
# TYPE convoy_webhook_deliveries_total counter
convoy_webhook_deliveries_total{event="ping",status="200"} 2
convoy_webhook_deliveries_total{event="ping",status="409"} 1
convoy_webhook_deliveries_total{event="push",status="401"} 1
convoy_webhook_deliveries_total{event="other",status="202"} 1
convoy_webhook_deliveries_total{event="other",status="401"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "convoy_webhook_deliveries_total"); err != nil {
		t.Error(err)
	}
}

// blockingReady is a readiness check that blocks until released: a slow
// request on a real route.
type blockingReady struct {
	entered chan struct{}
	release chan struct{}
}

func newBlockingReady(t *testing.T) *blockingReady {
	b := &blockingReady{entered: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-b.release:
		default:
			close(b.release)
		}
	})
	return b
}

func (b *blockingReady) check() error {
	b.entered <- struct{}{}
	<-b.release
	return nil
}

type result struct {
	code int
	body string
	err  error
}

func getAsync(c *http.Client, url string) <-chan result {
	out := make(chan result, 1)
	go func() {
		resp, err := c.Get(url)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		out <- result{code: resp.StatusCode, body: string(data), err: err}
	}()
	return out
}

// refused waits until a new connection to addr is refused.
func refused(addr string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	slow := newBlockingReady(t)
	s, base := serve(t, server.Options{Ready: slow.check})
	inFlight := getAsync(client(t), base+"/readyz")
	<-slow.entered

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- s.Shutdown(ctx)
	}()
	if !refused(strings.TrimPrefix(base, "http://"), 5*time.Second) {
		t.Fatal("new connections are still accepted after Shutdown began")
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	case r := <-inFlight:
		t.Fatalf("the in-flight request ended (%d %q %v) before it was released", r.code, r.body, r.err)
	case <-time.After(100 * time.Millisecond):
	}

	close(slow.release)
	if r := <-inFlight; r.err != nil || r.code != http.StatusOK || r.body != "ok\n" {
		t.Errorf("in-flight request = %d %q %v, want 200 \"ok\\n\"", r.code, r.body, r.err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last request ended")
	}
}

func TestShutdownDeadlineCutsOff(t *testing.T) {
	slow := newBlockingReady(t)
	s, base := serve(t, server.Options{Ready: slow.check})
	inFlight := getAsync(client(t), base+"/readyz")
	<-slow.entered

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown past its deadline = %v, want context.DeadlineExceeded", err)
	}
	select {
	case r := <-inFlight:
		if r.err == nil {
			t.Errorf("the cut-off request got an answer: %d %q", r.code, r.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the in-flight request was not cut off")
	}
}

func TestReadyzWhileDraining(t *testing.T) {
	// A keep-alive connection opened before Shutdown may still carry a probe:
	// it must say the server is going away.
	s, err := server.New(server.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "shutting down\n" {
		t.Errorf("GET /readyz after Shutdown = %d %q, want 503 \"shutting down\\n\"", rec.Code, rec.Body)
	}
}

func TestHeaderLimit(t *testing.T) {
	_, base := serve(t, server.Options{})
	big := http.Header{"X-Padding": {strings.Repeat("a", 80<<10)}}
	if code, _, _ := call(t, client(t), http.MethodGet, base+"/healthz", nil, big); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET with 80 KiB of headers = %d, want 431", code)
	}
	small := http.Header{"X-Padding": {strings.Repeat("a", 32<<10)}}
	if code, _, _ := call(t, client(t), http.MethodGet, base+"/healthz", nil, small); code != http.StatusOK {
		t.Errorf("GET with 32 KiB of headers = %d, want 200", code)
	}
}

func TestSlowHeadersTimeOut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5 s header timeout")
	}
	t.Parallel()
	_, base := serve(t, server.Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A request line and never the end of the headers (slowloris).
	fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: convoy\r\n")
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = bufio.NewReader(conn).ReadString('\n')
	waited := time.Since(start)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("read after %v: %v; want the server to close the connection", waited, err)
	}
	if waited < 4*time.Second || waited > 10*time.Second {
		t.Errorf("server closed the connection after %v, want about %v", waited, server.ReadHeaderTimeout)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// With a status token, the status page and /api/status need it; probes,
// metrics and the webhook (which has its own signature) do not.
func TestStatusToken(t *testing.T) {
	_, base := serve(t, server.Options{StatusToken: "s3cret", Status: func() server.Status { return server.Status{} }})
	get := func(path, auth string) int {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		path, auth string
		want       int
	}{
		{"/api/status", "", 401}, {"/api/status", "Bearer wrong", 401}, {"/api/status", "Bearer s3cret", 200},
		{"/", "", 401}, {"/", "Bearer s3cret", 200}, {"/healthz", "", 200},
	} {
		if got := get(tt.path, tt.auth); got != tt.want {
			t.Errorf("GET %s with %q: %d, want %d", tt.path, tt.auth, got, tt.want)
		}
	}
}
