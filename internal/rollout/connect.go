package rollout

import (
	"context"
	"time"

	"k8s.io/client-go/rest"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/fleet"
)

// BuildFunc makes the Applier of a fleet's cluster from its REST config:
// apply.New, or a cache of Appliers.
type BuildFunc func(cfg *rest.Config, fleetName, cluster string) (*apply.Applier, error)

// Connect reaches fleetName's clusters through connector, each request
// bounded by timeout (the connector's default when zero), building each
// cluster's Applier with build (apply.New when nil).
func Connect(connector *apply.Connector, fleetName string, timeout time.Duration, build BuildFunc) ConnectFunc {
	if build == nil {
		build = apply.New
	}
	return func(ctx context.Context, c *fleet.Cluster) (Cluster, error) {
		cfg, err := connector.RESTConfig(ctx, c)
		if err != nil {
			return nil, err
		}
		if timeout > 0 {
			cfg.Timeout = timeout
		}
		a, err := build(cfg, fleetName, c.Name)
		if err != nil {
			return nil, err
		}
		return a, nil
	}
}
