package agent

// The clusters' part of the status page, read from their records.

import (
	"context"
	"fmt"
	"time"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/server"
)

// refreshClusters reads every cluster's record for the status page.
func (a *Agent) refreshClusters(ctx context.Context, f *fleet.Fleet) {
	out := map[string]server.ClusterStatus{}
	for _, wave := range f.WaveClusters() {
		for _, c := range wave {
			out[c.Name] = a.clusterStatus(ctx, f, c)
		}
	}
	a.mu.Lock()
	a.st.clusters = out
	a.mu.Unlock()
}

// refreshCluster reads one cluster's record for the status page.
func (a *Agent) refreshCluster(ctx context.Context, f *fleet.Fleet, c *fleet.Cluster) {
	cs := a.clusterStatus(ctx, f, c)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.clusters == nil {
		a.st.clusters = map[string]server.ClusterStatus{}
	}
	a.st.clusters[c.Name] = cs
}

// clusterStatus is c's entry of the status page, from its record.
func (a *Agent) clusterStatus(ctx context.Context, f *fleet.Fleet, c *fleet.Cluster) server.ClusterStatus {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	cs := server.ClusterStatus{Name: c.Name, Environment: c.Environment, Region: c.Region}
	rec, err := a.clusters.Record(ctx, f.Name, c)
	switch {
	case err != nil:
		cs.Error = firstLine(err.Error())
	case rec == nil:
		cs.Health = "never applied"
	default:
		cs.Revision, cs.AppliedAt, cs.Health, cs.Objects = rec.Revision, rec.AppliedAt, rec.Health, len(rec.Inventory)
		cs.Rules, cs.Base = rec.Change.Rules, rec.Change.Base
		cs.Analysis, cs.Measurements = rec.Analysis, rec.Measurements
		if !rec.Applied() {
			cs.Health = rec.Status + ": " + rec.Reason
		}
		if rec.Corrected > 0 {
			cs.Drift = fmt.Sprintf("corrected %d at %s", rec.Corrected, rec.CorrectedAt.Format(time.RFC3339))
		}
	}
	return cs
}
