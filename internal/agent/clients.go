package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/render"
	"github.com/convoy-gitops/convoy/internal/rollout"
	"github.com/convoy-gitops/convoy/internal/source"
)

// appliers keeps one apply.Applier per fleet and cluster, for drift
// reconciles and status reads, for as long as the cluster's REST config
// stays the same. A new Applier starts with an empty REST mapper, so its
// first request costs discovery round trips (/api and /apis, aggregated),
// and with new HTTP clients; the agent reads every cluster's record after
// each reconcile and each cluster's rollout step, and paid those every
// time. A changed config (a rotated kubeconfig Secret, a new token, another
// endpoint or proxy) builds a new Applier on the next connect.
//
// A cached REST mapper can hold a mapping that no longer holds (a CRD
// removed, or created again with another scope). Rollouts, which change
// CRDs, do not use the cache and clear the fleet's entries when they end;
// a reconcile or read that fails on a cluster drops that cluster's entry,
// so its retry starts from fresh discovery.
type appliers struct {
	mu sync.Mutex
	m  map[clusterID]cachedApplier
}

type clusterID struct{ fleet, cluster string }

type cachedApplier struct {
	key     string // configKey of the config it was built with
	applier *apply.Applier
}

// get returns the cached Applier of fleetName's cluster when cfg is the
// config it was built with, or builds and caches a new one.
func (as *appliers) get(cfg *rest.Config, fleetName, cluster string) (*apply.Applier, error) {
	key, id := configKey(cfg), clusterID{fleetName, cluster}
	as.mu.Lock()
	defer as.mu.Unlock()
	if c, ok := as.m[id]; ok && c.key == key {
		return c.applier, nil
	}
	a, err := apply.New(cfg, fleetName, cluster) // builds clients; sends no request
	if err != nil {
		return nil, err
	}
	if as.m == nil {
		as.m = map[clusterID]cachedApplier{}
	}
	as.m[id] = cachedApplier{key: key, applier: a}
	return a, nil
}

// forget drops the cached Applier of fleetName's cluster, or of every
// cluster of the fleet when cluster is empty.
func (as *appliers) forget(fleetName, cluster string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	for id := range as.m {
		if id.fleet == fleetName && (cluster == "" || id.cluster == cluster) {
			delete(as.m, id)
		}
	}
}

// configKey is a digest of what in cfg decides where and as whom requests
// go and how they are limited; credentials go into the digest only, never
// out of it.
func configKey(cfg *rest.Config) string {
	h := sha256.New()
	tls := cfg.TLSClientConfig
	fmt.Fprintf(h, "%q %q %q %q %q %q %q|", cfg.Host, cfg.APIPath, cfg.Username, cfg.Password,
		cfg.BearerToken, cfg.BearerTokenFile, cfg.UserAgent)
	fmt.Fprintf(h, "%t %q %q %q %q %q %q %q %q|", tls.Insecure, tls.ServerName, tls.CertFile, tls.KeyFile, tls.CAFile,
		tls.CertData, tls.KeyData, tls.CAData, tls.NextProtos)
	fmt.Fprintf(h, "%+v|%+v|%+v|", cfg.Impersonate, cfg.ExecProvider, cfg.AuthProvider)
	fmt.Fprintf(h, "%v %v %v %v|", cfg.Timeout, cfg.QPS, cfg.Burst, cfg.DisableCompression)
	if cfg.Proxy != nil { // a kubeconfig's proxy-url: where it sends a request to Host
		if u, err := url.Parse(cfg.Host); err == nil {
			proxy, err := cfg.Proxy(&http.Request{URL: u})
			fmt.Fprintf(h, "proxy %v %v", proxy, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// connect reaches fleetName's clusters with a new Applier each time, for
// rollouts: they start from fresh discovery.
func (a *Agent) connect(fleetName string) rollout.ConnectFunc {
	return rollout.Connect(a.connector, fleetName, a.timeout, apply.New)
}

// connectCached reaches fleetName's clusters with the Appliers kept in
// a.clients, for drift reconciles and status reads.
func (a *Agent) connectCached(fleetName string) rollout.ConnectFunc {
	return rollout.Connect(a.connector, fleetName, a.timeout, a.clients.get)
}

// renderAt renders one cluster at another revision, for rollback.
func (a *Agent) renderAt(ctx context.Context, revision string, c *fleet.Cluster) ([]*unstructured.Unstructured, string, error) {
	src, err := a.sourceAt(revision)
	if err != nil {
		return nil, "", err
	}
	snap, err := src.Fetch(ctx, "")
	if err != nil {
		return nil, "", err
	}
	var r render.Renderer
	res, err := r.ClusterAt(ctx, snap.Dir, c.Name)
	if err != nil {
		return nil, "", fmt.Errorf("revision %s: %w", short(revision), err)
	}
	return res.Objects, res.Hash, nil
}

// sourceAt is the repository pinned at revision (a SHA or a ref), with the
// agent's credentials and verification.
func (a *Agent) sourceAt(revision string) (*source.Source, error) {
	opt := a.srcOpts
	opt.Revision = revision
	return source.New(opt)
}
