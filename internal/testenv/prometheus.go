package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Exporter is a stand-in service of a test cluster: it serves, on its own
// port, the conventional metrics the built-in analyses query
// (http_requests_total by code, http_request_duration_seconds), as a
// service handling 100 requests a second would, at the error ratio and
// latency the test sets. Prometheus scrapes it; nothing about Prometheus
// is faked.
type Exporter struct {
	Addr string // host:port

	mu       sync.Mutex
	errRatio float64
	latency  time.Duration
	last     time.Time
	carry    float64 // requests not yet counted, below one

	requests *prometheus.CounterVec
	duration prometheus.Histogram
	srv      *http.Server
}

// NewExporter serves the metrics of a service with no errors and 50ms
// latency until the test ends.
func NewExporter(t testing.TB) *Exporter {
	t.Helper()
	e, err := StartExporter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// StartExporter is NewExporter outside a test: Close stops it.
func StartExporter() (*Exporter, error) {
	e := &Exporter{latency: 50 * time.Millisecond, last: time.Now()}
	reg := prometheus.NewRegistry()
	e.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests served, by status code."}, []string{"code"})
	e.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "http_request_duration_seconds", Help: "Request latency.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}})
	reg.MustRegister(e.requests, e.duration)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.Addr = l.Addr().String()
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	e.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.advance()
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = e.srv.Serve(l) }()
	return e, nil
}

// Close stops serving.
func (e *Exporter) Close() { _ = e.srv.Close() }

// Set changes the service's error ratio (0..1) and latency from now on.
func (e *Exporter) Set(errRatio float64, latency time.Duration) {
	e.advance()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errRatio, e.latency = errRatio, latency
}

// advance counts the requests served since the last scrape at the
// current error ratio and latency.
func (e *Exporter) advance() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	n := 100*now.Sub(e.last).Seconds() + e.carry
	e.last = now
	whole := int(n)
	e.carry = n - float64(whole)
	errs := int(float64(whole)*e.errRatio + rand.Float64())
	errs = min(errs, whole)
	e.requests.WithLabelValues("500").Add(float64(errs))
	e.requests.WithLabelValues("200").Add(float64(whole - errs))
	for range whole {
		e.duration.Observe(e.latency.Seconds())
	}
}

// Prometheus is a real Prometheus server (bin/prometheus) scraping
// exporters every second, each target labelled with its cluster.
type Prometheus struct {
	URL  string
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPrometheus starts Prometheus scraping targets (cluster → exporter
// addresses) every second; it is stopped when the test ends.
func StartPrometheus(t testing.TB, targets map[string][]string) *Prometheus {
	t.Helper()
	p, err := RunPrometheus(t.TempDir(), targets)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// RunPrometheus is StartPrometheus outside a test, keeping its files in
// dir: Stop stops it.
func RunPrometheus(dir string, targets map[string][]string) (*Prometheus, error) {
	assets, err := AssetsDir(false)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(assets, "prometheus")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: %w (make tools builds it)", bin, err)
	}
	var b strings.Builder
	b.WriteString("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n- job_name: service\n  static_configs:\n")
	for cluster, addrs := range targets {
		fmt.Fprintf(&b, "  - targets: [%s]\n    labels: {cluster: %q}\n", strings.Join(addrs, ", "), cluster)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	p := &Prometheus{URL: "http://" + addr, dir: dir, args: []string{bin, "--config.file=" + cfg, "--web.listen-address=" + addr,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"), "--log.level=warn"}}
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// Start starts the server (again, after Stop, on the same port and data)
// and waits until it is ready.
func (p *Prometheus) Start() error {
	logf, err := os.OpenFile(filepath.Join(p.dir, "prometheus.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start prometheus: %w", err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/-/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return errors.New("prometheus exited while starting; see " + filepath.Join(p.dir, "prometheus.log"))
		case <-ctx.Done():
			return errors.New("prometheus not ready after 30s; see " + filepath.Join(p.dir, "prometheus.log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills the server, if it runs.
func (p *Prometheus) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// Query returns the values of an instant query's series, now.
func (p *Prometheus) Query(query string) ([]float64, error) {
	resp, err := http.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	out := make([]float64, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", query, r.Value[1], err)
		}
		out = append(out, v)
	}
	return out, nil
}

// WaitForSeries waits until query returns at least one series: scrapes
// enough for a rate() over its window, say.
func (p *Prometheus) WaitForSeries(t testing.TB, timeout time.Duration, query string) {
	t.Helper()
	WaitFor(t, timeout, "a series of "+query, func() bool {
		vs, err := p.Query(query)
		return err == nil && len(vs) > 0
	})
}

// ErrorsAnalysis is YAML for spec.rollout (four spaces in) of an analysis
// "errors": the 5xx ratio of http_requests_total over 4 s, under 5 %,
// measured every second, twice in a row to pass, on the Prometheus at url
// for the clusters of region.
func ErrorsAnalysis(url, region string) string {
	return `    analysis:
      prometheus:
        ` + region + `: {address: "` + url + `"}
      templates:
      - name: errors
        query: sum(rate(http_requests_total{cluster="{{ .Cluster }}",code=~"5.."}[4s])) / sum(rate(http_requests_total{cluster="{{ .Cluster }}"}[4s]))
        condition: "< 0.05"
        interval: 1s
        consecutiveSuccesses: 2
`
}
