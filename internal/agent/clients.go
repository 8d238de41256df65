package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"k8s.io/client-go/rest"

	"github.com/convoy-gitops/convoy/internal/apply"
)

// appliers keeps one apply.Applier per fleet and cluster for as long as
// the cluster's REST config stays the same. A new Applier starts with an
// empty REST mapper, so its first request of each API group costs a
// discovery round trip (/api, /apis, /apis/GROUP/VERSION), and with new
// HTTP clients; the agent connects to every cluster on each drift
// reconcile and each status refresh, which paid those every time. A
// changed config (a rotated kubeconfig Secret, a new token) builds a new
// Applier on the next connect. A rollout, reconcile or record read that
// fails drops them all (forget): the cached REST mapping of a kind may be
// what failed (a CRD deleted and created again with another scope), and
// the retry must start from fresh discovery, as it did before the cache.
type appliers struct {
	mu sync.Mutex
	m  map[string]cachedApplier // by fleet + "/" + cluster
}

type cachedApplier struct {
	key     string // configKey of the config it was built with
	applier *apply.Applier
}

// get returns the cached Applier of fleetName's cluster when cfg is the
// config it was built with, or builds and caches a new one.
func (as *appliers) get(cfg *rest.Config, fleetName, cluster string) (*apply.Applier, error) {
	key, id := configKey(cfg), fleetName+"/"+cluster
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
		as.m = map[string]cachedApplier{}
	}
	as.m[id] = cachedApplier{key: key, applier: a}
	return a, nil
}

// configKey is a digest of what in cfg decides where and as whom requests
// go and how they are limited; credentials go into the digest only, never
// out of it.
func configKey(cfg *rest.Config) string {
	h := sha256.New()
	tls := cfg.TLSClientConfig
	fmt.Fprintf(h, "%q %q %q %q %q %q %q %q|", cfg.Host, cfg.APIPath, cfg.Username, cfg.Password,
		cfg.BearerToken, cfg.BearerTokenFile, cfg.UserAgent, cfg.TLSClientConfig.ServerName)
	fmt.Fprintf(h, "%t %q %q %q %q %q %q %q|", tls.Insecure, tls.CertFile, tls.KeyFile, tls.CAFile,
		tls.CertData, tls.KeyData, tls.CAData, tls.NextProtos)
	fmt.Fprintf(h, "%+v|%+v|%+v|", cfg.Impersonate, cfg.ExecProvider, cfg.AuthProvider)
	fmt.Fprintf(h, "%v %v %v %v", cfg.Timeout, cfg.QPS, cfg.Burst, cfg.DisableCompression)
	return hex.EncodeToString(h.Sum(nil))
}

// forget drops every cached Applier; the next connect builds a new one.
func (as *appliers) forget() {
	as.mu.Lock()
	defer as.mu.Unlock()
	clear(as.m)
}
