package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/convoy-gitops/convoy/internal/analysis"
	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/source"
)

// DeploymentAPI is the part of a forge's API that records deployments:
// change.GitHub implements it.
type DeploymentAPI interface {
	// CreateDeployment answers an error matching *change.DeploymentRefused
	// when the forge answered without creating one (trying again won't help).
	CreateDeployment(ctx context.Context, ref, environment string, production bool, payload map[string]any) (int64, error)
	SetDeploymentStatus(ctx context.Context, id int64, state, description string) error
}

// Deployments mirrors a rollout on the forge: one deployment per cluster
// (environment = cluster name, ref = revision, payload with the wave and
// the change), queued when the rollout starts, then in_progress, success
// or failure as each cluster goes. Production clusters get production
// environments. Reporting never stops a rollout: its errors are logged.
type Deployments struct {
	API DeploymentAPI
	Log *slog.Logger

	mu      sync.Mutex
	ids     map[string]int64 // cluster → deployment ID
	refused int              // clusters whose deployment the forge refused for good
}

// Start creates a queued deployment for every cluster of plan.
func (d *Deployments) Start(ctx context.Context, plan *Plan) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ids = map[string]int64{}
	d.refused = 0
	for _, t := range plan.Targets {
		payload := map[string]any{"wave": t.Cluster.Wave, "cluster": t.Cluster.Name}
		if ch := plan.Change; ch != nil {
			payload["category"] = ch.Category
			if ch.PullRequest != nil {
				payload["pull_request"] = ch.PullRequest.Number
			}
		}
		id, err := d.API.CreateDeployment(ctx, plan.Revision, t.Cluster.Name, t.Cluster.Environment == "production", payload)
		var refused *change.DeploymentRefused
		if errors.As(err, &refused) {
			d.refused++
			if d.Log != nil {
				d.Log.Info("deployment not recorded on the forge", "cluster", t.Cluster.Name, "reason", err)
			}
			continue
		}
		if err != nil {
			d.logError("create deployment", t.Cluster.Name, err)
			continue
		}
		d.ids[t.Cluster.Name] = id
		d.set(ctx, t.Cluster.Name, "queued", "waiting for wave "+t.Cluster.Wave)
	}
}

// Event updates the cluster's deployment from a rollout progress event.
func (d *Deployments) Event(ctx context.Context, e Event) {
	if e.Cluster == "" {
		return
	}
	state := map[string]string{"apply": "in_progress", "healthy": "success", "skipped": "success", "failed": "failure", "rollback": "failure",
		"verified": "success"}[e.Step]
	if e.Step == "analysis" && e.Measurement != nil && e.Measurement.Verdict == analysis.Fail {
		state = "failure" // the measurement that fails the wave
	}
	if state == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.set(ctx, e.Cluster, state, fmt.Sprintf("%s %s", e.Step, e.Detail))
}

// Supersede marks every deployment that did not finish as inactive: a newer
// revision replaces this one.
func (d *Deployments) Supersede(ctx context.Context, out *Outcome, by string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range out.Clusters {
		if c.Action == ActionUntouched || c.Action == ActionHeld {
			d.set(ctx, c.Name, "inactive", "superseded by "+source.Short(by))
		}
	}
}

func (d *Deployments) set(ctx context.Context, cluster, state, desc string) {
	id, ok := d.ids[cluster]
	if !ok {
		return
	}
	if err := d.API.SetDeploymentStatus(ctx, id, state, desc); err != nil {
		d.logError("set deployment status", cluster, err)
	}
}

func (d *Deployments) logError(what, cluster string, err error) {
	if d.Log != nil {
		d.Log.Warn(what, "cluster", cluster, "error", err)
	}
}

// Started reports whether Start ran: the deployments exist on the forge
// (or it was tried).
func (d *Deployments) Started() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ids != nil
}

// Answered counts the clusters whose deployment the forge created or
// refused for good; zero when it could not be reached, so the caller can
// try again on the next attempt.
func (d *Deployments) Answered() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ids) + d.refused
}
