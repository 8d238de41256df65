package fleet

import "github.com/convoy-gitops/convoy/internal/yamlfile"

// The fleet.yaml file as written: yamlfile.Decode fills these strictly
// (unknown fields, wrong kinds, duplicate keys), and spec.go checks what
// they mean and builds a Fleet from them.

type fleetFile struct {
	APIVersion string       `yaml:"apiVersion"`
	Kind       string       `yaml:"kind"`
	Metadata   metadataFile `yaml:"metadata"`
	Spec       *specFile    `yaml:"spec"`
}

type metadataFile struct {
	Name string `yaml:"name"`
}

type specFile struct {
	Timezone  string        `yaml:"timezone"`
	Clusters  []clusterFile `yaml:"clusters"`
	Rollout   rolloutFile   `yaml:"rollout"`
	Windows   []windowFile  `yaml:"windows"`
	Reconcile reconcileFile `yaml:"reconcile"`
	Change    changeFile    `yaml:"change"`
	Policy    policyFile    `yaml:"policy"`
}

type clusterFile struct {
	Name        string            `yaml:"name"`
	Environment string            `yaml:"environment"`
	Region      string            `yaml:"region"`
	Path        string            `yaml:"path"`
	Kubeconfig  *kubeconfigFile   `yaml:"kubeconfig"`
	Capacity    map[string]string `yaml:"capacity"`
	Labels      map[string]string `yaml:"labels"`
	Prometheus  *prometheusFile   `yaml:"prometheus"`
	Analysis    []string          `yaml:"analysis"`
}

type prometheusFile struct {
	Address         string `yaml:"address"`
	BearerTokenFile string `yaml:"bearerTokenFile"`
	CAFile          string `yaml:"caFile"`
}

type kubeconfigFile struct {
	Context   string         `yaml:"context"`
	SecretRef *secretRefFile `yaml:"secretRef"`
	InCluster bool           `yaml:"inCluster"`
}

type secretRefFile struct {
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
	Key       string `yaml:"key"`
}

type rolloutFile struct {
	Waves             []waveFile        `yaml:"waves"`
	HealthTimeout     yamlfile.Duration `yaml:"healthTimeout"`
	FailFast          *bool             `yaml:"failFast"`
	RollbackOnFailure bool              `yaml:"rollbackOnFailure"`
	Analysis          analysisFile      `yaml:"analysis"`
}

type analysisFile struct {
	Templates []templateFile `yaml:"templates"`
	// Prometheus is the Prometheus of each region, for its clusters that
	// name none of their own.
	Prometheus map[string]prometheusFile `yaml:"prometheus"`
}

type templateFile struct {
	Name                 string            `yaml:"name"`
	Query                string            `yaml:"query"`
	Condition            string            `yaml:"condition"`
	Interval             yamlfile.Duration `yaml:"interval"`
	Count                int               `yaml:"count"`
	FailureLimit         int               `yaml:"failureLimit"`
	ConsecutiveSuccesses int               `yaml:"consecutiveSuccesses"`
	Inconclusive         string            `yaml:"inconclusive"`
}

type waveFile struct {
	Name        string            `yaml:"name"`
	Clusters    []string          `yaml:"clusters"`
	Bake        yamlfile.Duration `yaml:"bake"`
	MaxParallel int               `yaml:"maxParallel"`
	Analysis    []string          `yaml:"analysis"`
}

type windowFile struct {
	Name            string            `yaml:"name"`
	Kind            string            `yaml:"kind"`
	Schedule        string            `yaml:"schedule"`
	Duration        yamlfile.Duration `yaml:"duration"`
	Environments    []string          `yaml:"environments"`
	AllowCategories []string          `yaml:"allowCategories"`
}

type reconcileFile struct {
	Schedule string `yaml:"schedule"`
}

type changeFile struct {
	Source string      `yaml:"source"`
	GitHub *githubFile `yaml:"github"`
}

type githubFile struct {
	Owner string `yaml:"owner"`
	Repo  string `yaml:"repo"`
}

type policyFile struct {
	Data map[string]any `yaml:"data"`
}
