package apply

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"k8s.io/client-go/rest"
)

// Cache keeps one Applier per fleet and cluster for as long as the
// cluster's REST config stays the same. A new Applier starts with an empty
// REST mapper, so its first request costs discovery round trips (/api and
// /apis, aggregated), and with new HTTP clients; the agent reads every
// cluster's record after each reconcile and each cluster's rollout step,
// and paid those every time. A changed config (a rotated kubeconfig
// Secret, a new token, another endpoint or proxy) builds a new Applier.
//
// A cached REST mapper can hold a mapping that no longer holds (a CRD
// removed, or created again with another scope): whoever changes CRDs or
// sees a cluster fail calls Forget, so the next connect starts from fresh
// discovery.
type Cache struct {
	mu sync.Mutex
	m  map[clusterID]cachedApplier
}

type clusterID struct{ fleet, cluster string }

type cachedApplier struct {
	key     string // configKey of the config it was built with
	applier *Applier
}

// Get returns the cached Applier of fleetName's cluster when cfg is the
// config it was built with, or builds (New) and caches a new one.
func (c *Cache) Get(cfg *rest.Config, fleetName, cluster string) (*Applier, error) {
	key, id := configKey(cfg), clusterID{fleetName, cluster}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok && e.key == key {
		return e.applier, nil
	}
	a, err := New(cfg, fleetName, cluster) // builds clients; sends no request
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[clusterID]cachedApplier{}
	}
	c.m[id] = cachedApplier{key: key, applier: a}
	return a, nil
}

// Forget drops the cached Applier of fleetName's cluster, or of every
// cluster of the fleet when cluster is empty.
func (c *Cache) Forget(fleetName, cluster string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.m {
		if id.fleet == fleetName && (cluster == "" || id.cluster == cluster) {
			delete(c.m, id)
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
