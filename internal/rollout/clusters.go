package rollout

import (
	"context"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/fleet"
)

// Clusters reaches the clusters of fleets: a REST config from the
// kubeconfig context or secretRef Secret each cluster names, and a client
// for it. Connect builds a new client each time, as rollouts want (they
// change CRDs: they start from fresh discovery, and Forget the fleet's
// cached clients when they end); Cached reuses one per cluster while its
// config stays the same, for drift correction and record reads.
type Clusters struct {
	// Kubeconfig holds the contexts `kubeconfig: {context: …}` names;
	// empty means $KUBECONFIG, then ~/.kube/config.
	Kubeconfig string
	// Local reaches the cluster the agent runs in, where secretRef
	// Secrets live, in LocalNamespace only. Nil refuses secretRef (the
	// CLI).
	Local          client.Reader
	LocalNamespace string
	// Timeout bounds each request to a cluster; apply.DefaultTimeout when
	// zero.
	Timeout time.Duration

	cache apply.Cache
}

// Connect reaches fleetName's clusters with a new client each time.
func (cs *Clusters) Connect(fleetName string) ConnectFunc {
	return cs.connect(fleetName, apply.New)
}

// Cached reaches fleetName's clusters with the clients kept since the
// last Forget.
func (cs *Clusters) Cached(fleetName string) ConnectFunc {
	return cs.connect(fleetName, cs.cache.Get)
}

// Forget drops the kept client of fleetName's cluster, or of every cluster
// of the fleet when cluster is empty: the next connect starts afresh.
func (cs *Clusters) Forget(fleetName, cluster string) {
	cs.cache.Forget(fleetName, cluster)
}

// Record reads the record of fleetName's cluster c through its kept
// client: nil when convoy never applied there. A cluster that fails to
// answer is forgotten.
func (cs *Clusters) Record(ctx context.Context, fleetName string, c *fleet.Cluster) (*apply.Record, error) {
	cl, err := cs.Cached(fleetName)(ctx, c)
	var rec *apply.Record
	if err == nil {
		rec, err = cl.ReadRecord(ctx)
	}
	if err != nil {
		cs.Forget(fleetName, c.Name)
	}
	return rec, err
}

func (cs *Clusters) connect(fleetName string, build func(*rest.Config, string, string) (*apply.Applier, error)) ConnectFunc {
	connector := &apply.Connector{KubeconfigFile: cs.Kubeconfig, Local: cs.Local, LocalNamespace: cs.LocalNamespace}
	return func(ctx context.Context, c *fleet.Cluster) (Cluster, error) {
		cfg, err := connector.RESTConfig(ctx, c)
		if err != nil {
			return nil, err
		}
		if cs.Timeout > 0 {
			cfg.Timeout = cs.Timeout
		}
		a, err := build(cfg, fleetName, c.Name)
		if err != nil {
			return nil, err
		}
		return a, nil
	}
}
