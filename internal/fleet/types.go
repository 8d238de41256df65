// Package fleet owns the fleet definition of a config repository: the
// fleet.yaml file, its strict loading and its validation.
// Load and Parse decode it with yamlfile, convoy's one strict loader
// (file.go is the file as written), then check what it means (spec.go), so
// that every problem (unknown fields included) is reported at once, each
// with its file, line and field, in a *ValidationError.
package fleet

import (
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/api/resource"
)

// APIVersion and Kind identify a fleet.yaml document.
const (
	APIVersion = "convoy.dev/v1alpha1"
	Kind       = "Fleet"
	// FileName is the fleet definition's name at the root of a config repo.
	FileName = "fleet.yaml"
)

// Fleet is a loaded and validated fleet.yaml.
type Fleet struct {
	Name      string
	Timezone  string
	Location  *time.Location // loaded from Timezone; UTC when Timezone is empty
	Clusters  []Cluster      // in file order
	Rollout   Rollout
	Windows   []Window
	Reconcile Reconcile
	Change    ChangeSource
	// PolicyData is spec.policy.data, exposed to Rego as data.convoy.config.
	PolicyData map[string]any
}

// Cluster is one target cluster of the fleet.
type Cluster struct {
	Name        string
	Environment string
	Region      string
	Path        string // kustomization directory, slash-separated, relative to the repo root
	Kubeconfig  KubeconfigRef
	Capacity    map[string]resource.Quantity // resource name → quantity; may be empty
	Labels      map[string]string
	Wave        string // name of the wave that holds this cluster
	// Prometheus is where its analyses query: its own, or its region's.
	Prometheus *Prometheus
	// Analysis names the analyses that gate it besides its wave's.
	Analysis []string
}

// KubeconfigRef says how to reach a cluster; exactly one field is set.
type KubeconfigRef struct {
	Context   string     // a context in the kubeconfig file given to the command or agent
	SecretRef *SecretRef // a Secret holding a kubeconfig, in the agent's cluster
	InCluster bool       // the cluster the agent runs in
}

// SecretRef names a key of a Secret.
type SecretRef struct {
	Name      string
	Namespace string
	Key       string
}

// Rollout orders the clusters in waves.
type Rollout struct {
	Waves             []Wave
	HealthTimeout     time.Duration // default 5m
	FailFast          bool          // default true
	RollbackOnFailure bool
	// Analyses are the analysis templates by name, the built-ins included.
	Analyses map[string]*Analysis
}

// Wave is a group of clusters applied together, after the previous wave is healthy.
type Wave struct {
	Name        string
	Clusters    []string
	Bake        time.Duration // wait after the wave is healthy
	MaxParallel int           // clusters applied at once; default: all of the wave
	Analysis    []string      // the analyses that gate every cluster of the wave
}

// Window is a recurring time window (a cron schedule plus a duration).
type Window struct {
	Name            string
	Kind            string // "deny" (the only kind today)
	Schedule        string
	Cron            cron.Schedule // parsed Schedule, in the fleet's time zone
	Duration        time.Duration
	Environments    []string // empty means every environment
	AllowCategories []string
}

// Reconcile is the drift detection schedule.
type Reconcile struct {
	Schedule string
	Cron     cron.Schedule // nil when Schedule is empty
}

// ChangeSource says where change requests and approvals come from.
type ChangeSource struct {
	Source string // "github" or "trailers"; default "trailers"
	GitHub GitHubRepo
}

// GitHubRepo names the repository whose pull requests are the change requests.
type GitHubRepo struct {
	Owner string
	Repo  string
}

// ClusterByName returns the named cluster, or nil.
func (f *Fleet) ClusterByName(name string) *Cluster {
	for i := range f.Clusters {
		if f.Clusters[i].Name == name {
			return &f.Clusters[i]
		}
	}
	return nil
}

// WaveIndex returns the position of the named wave in the rollout, or -1.
func (f *Fleet) WaveIndex(name string) int {
	for i, w := range f.Rollout.Waves {
		if w.Name == name {
			return i
		}
	}
	return -1
}

// WaveClusters returns the clusters of each wave, in rollout order and in
// the order each wave lists them.
func (f *Fleet) WaveClusters() [][]*Cluster {
	out := make([][]*Cluster, len(f.Rollout.Waves))
	for i, w := range f.Rollout.Waves {
		for _, name := range w.Clusters {
			if c := f.ClusterByName(name); c != nil {
				out[i] = append(out[i], c)
			}
		}
	}
	return out
}

// Gates are the analyses that gate cluster c: its wave's, then its own,
// each once.
func (f *Fleet) Gates(c *Cluster) []*Analysis {
	var names []string
	if i := f.WaveIndex(c.Wave); i >= 0 {
		names = append(names, f.Rollout.Waves[i].Analysis...)
	}
	var out []*Analysis
	seen := map[string]bool{}
	for _, n := range append(names, c.Analysis...) {
		if a := f.Rollout.Analyses[n]; a != nil && !seen[n] {
			seen[n] = true
			out = append(out, a)
		}
	}
	return out
}

// TrustedBots are the apps whose approvals count: policy data trustedBots.
func TrustedBots(policyData map[string]any) []string {
	list, _ := policyData["trustedBots"].([]any)
	var out []string
	for _, b := range list {
		if s, ok := b.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
