package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// APIProxy is an HTTP proxy in front of one test cluster's API server, for
// fault injection between a client and a real kube-apiserver:
//
//   - Down refuses connections (and cuts open ones) as a stopped
//     kube-apiserver does; Up serves again on the same address.
//   - SetLatency delays every request before it is forwarded; a client that
//     gives up first never reaches the API server.
//   - Hold parks the requests a predicate matches until Release.
//
// A proxy rather than stopping envtest's kube-apiserver: envtest's restart
// keeps the port but makes a new serving CA and new admin credentials, which
// no kubeconfig written before it would trust. Clients reach the proxy over
// plain HTTP without credentials; it reaches the API server as the cluster's
// admin. The cluster's own Config and Client bypass the proxy, so tests can
// read the true state (and RequestCounts) while the proxy is down.
type APIProxy struct {
	Cluster *Cluster
	// Config reaches the API server through the proxy.
	Config *rest.Config

	addr    string
	forward *httputil.ReverseProxy

	mu      sync.Mutex
	srv     *http.Server
	latency time.Duration
	hold    func(*http.Request) bool
	held    []string      // "METHOD path" of the requests parked now
	release chan struct{} // closed by Release
}

// NewAPIProxy starts a proxy in front of c's API server; it stops when the
// test ends.
func NewAPIProxy(t testing.TB, c *Cluster) *APIProxy {
	t.Helper()
	target, err := url.Parse(c.Config.Host)
	if err != nil {
		t.Fatalf("cluster %s: API server URL %q: %v", c.Name, c.Config.Host, err)
	}
	transport, err := rest.TransportFor(c.Config)
	if err != nil {
		t.Fatalf("cluster %s: transport: %v", c.Name, err)
	}
	p := &APIProxy{Cluster: c, release: make(chan struct{})}
	p.forward = &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     transport,
		FlushInterval: -1, // watches stream
		ErrorLog:      log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	p.Config = &rest.Config{Host: "http://" + p.addr, QPS: c.Config.QPS, Burst: c.Config.Burst}
	t.Cleanup(func() {
		p.Release()
		p.Down()
	})
	return p
}

// URL is the proxy's address, http://127.0.0.1:PORT.
func (p *APIProxy) URL() string { return "http://" + p.addr }

func (p *APIProxy) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.serveHTTP), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Down closes the listener and every open connection: new connections are
// refused until Up. Requests in flight lose their client.
func (p *APIProxy) Down() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up serves again on the address the proxy had, as a restarted API server
// does. It retries for a few seconds when the port is still held.
func (p *APIProxy) Up() error {
	p.mu.Lock()
	up := p.srv != nil
	p.mu.Unlock()
	if up {
		return nil
	}
	var lastErr error
	for range 50 {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			p.serve(ln)
			return nil
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("proxy of cluster %s: listen again on %s: %w", p.Cluster.Name, p.addr, lastErr)
}

// SetLatency delays every later request by d before it is forwarded; 0
// removes the delay.
func (p *APIProxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// Hold parks every later request that match reports true for, until
// Release. A parked request is forwarded on Release even when its client
// has gone meanwhile, as a request already on the wire would reach the
// server.
func (p *APIProxy) Hold(match func(*http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = match
	p.release = make(chan struct{})
}

// Held returns "METHOD path" of the requests parked now, in arrival order.
func (p *APIProxy) Held() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.held...)
}

// Release forwards the parked requests and stops holding.
func (p *APIProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hold != nil {
		close(p.release)
	}
	p.hold, p.held = nil, nil
}

func (p *APIProxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	latency, hold, release := p.latency, p.hold, p.release
	p.mu.Unlock()

	if hold != nil && hold(r) {
		// The whole request arrives before it is parked, so that it can be
		// forwarded after its client is gone.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		// Detached from the client, but cancellable: httputil.ReverseProxy
		// falls back to CloseNotify for a context that never ends.
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		p.held = append(p.held, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		<-release
	} else if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the client gave up: the request never reaches the API server
		}
	}
	p.forward.ServeHTTP(w, r)
}

// KubeconfigVia writes a kubeconfig with one context per cluster, named
// after it, like KubeconfigFile, except that the clusters of proxies are
// reached through them.
func (cs *Clusters) KubeconfigVia(path string, proxies ...*APIProxy) error {
	items := make([]*Cluster, 0, len(cs.Items))
	for _, c := range cs.Items {
		item := c
		for _, p := range proxies {
			if p.Cluster == c {
				item = &Cluster{Name: c.Name, Config: p.Config}
			}
		}
		items = append(items, item)
	}
	if len(items) == 0 {
		return errors.New("no clusters")
	}
	return writeKubeconfig(path, items...)
}
