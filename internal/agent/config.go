package agent

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/convoy-gitops/convoy/internal/yamlfile"
)

// ConfigKind and ConfigAPIVersion identify an agent config file.
const (
	ConfigAPIVersion = "convoy.dev/v1alpha1"
	ConfigKind       = "AgentConfig"
)

// maxConfigSize caps the config file: it is a few dozen lines.
const maxConfigSize = 1 << 20

// Config is the agent's configuration file (`convoy run --config FILE`).
// Secrets are never inline: they are files (mounted Secrets) or the
// environment.
type Config struct {
	APIVersion     string               `yaml:"apiVersion"`
	Kind           string               `yaml:"kind"`
	Repo           RepoConfig           `yaml:"repo"`
	Kubeconfig     KubeconfigConfig     `yaml:"kubeconfig"`
	GitHub         *GitHubConfig        `yaml:"github"`
	Webhook        *WebhookConfig       `yaml:"webhook"`
	Listen         ListenConfig         `yaml:"listen"`
	LeaderElection LeaderElectionConfig `yaml:"leaderElection"`
	Log            LogConfig            `yaml:"log"`
	// Policies are extra policy directories, added to the built-ins and the
	// config repo's own policies/.
	Policies []string `yaml:"policies"`
	// WorkDir holds the revision snapshots; /tmp/convoy by default.
	WorkDir string `yaml:"workDir"`
	// Debounce is how long the agent waits after a push for more pushes
	// before it fetches (a burst becomes one rollout of its newest commit).
	Debounce Duration `yaml:"debounce"`
	// HoldRecheck bounds how long a hold waits before it is re-evaluated
	// when no window end or event comes sooner.
	HoldRecheck Duration `yaml:"holdRecheck"`
	// Governance pins the rules that judge every change to an
	// operator-owned directory (fleet.yaml, policies/, CODEOWNERS laid out
	// as in the config repository), which the config repository then
	// cannot change. Unset: each change is judged by the rules of the
	// revision its cluster runs.
	Governance GovernanceConfig `yaml:"governance"`
	// PullRequests says which pull requests the agent plans.
	PullRequests PullRequestConfig `yaml:"pullRequests"`
	// Protection names the namespaces changes may not write to besides
	// convoy-system and the agent's own.
	Protection ProtectionConfig `yaml:"protection"`
	// MaxCommits bounds the commits one rollout carries, each judged on
	// its own; trust.DefaultMaxCommits when zero.
	MaxCommits int `yaml:"maxCommits"`
	// Render bounds each cluster's render.
	Render RenderConfig `yaml:"render"`
	// AllowInsecure accepts http:// and git:// repository URLs and an
	// http:// GitHub API, which send credentials in clear. For tests and
	// local servers only.
	AllowInsecure bool `yaml:"allowInsecure"`

	file string // where it was loaded from, for messages
}

// RepoConfig is the config repository the agent watches.
type RepoConfig struct {
	URL          string     `yaml:"url"`
	Branch       string     `yaml:"branch"`
	PollInterval Duration   `yaml:"pollInterval"`
	Timeout      Duration   `yaml:"timeout"`
	Auth         RepoAuth   `yaml:"auth"`
	Verify       RepoVerify `yaml:"verify"`
}

// RepoAuth names the files that hold the repository's credentials.
type RepoAuth struct {
	TokenFile         string `yaml:"tokenFile"`
	UsernameFile      string `yaml:"usernameFile"`
	PasswordFile      string `yaml:"passwordFile"`
	SSHKeyFile        string `yaml:"sshKeyFile"`
	SSHPassphraseFile string `yaml:"sshPassphraseFile"`
	KnownHostsFile    string `yaml:"knownHostsFile"`
}

// RepoVerify configures commit signature verification.
type RepoVerify struct {
	Mode     string `yaml:"mode"` // off (default) or head
	KeysFile string `yaml:"keysFile"`
}

// KubeconfigConfig says how the agent reaches the fleet's clusters: a file
// whose contexts are named by fleet.yaml's kubeconfig references.
type KubeconfigConfig struct {
	File string `yaml:"file"`
}

// GitHubConfig enables the GitHub change source's API access: a token,
// or a GitHub App installation.
type GitHubConfig struct {
	API       string     `yaml:"api"`
	TokenFile string     `yaml:"tokenFile"`
	App       *GitHubApp `yaml:"app"`
	// MaxRateLimitWait is the longest wait for a rate limit's reset; a
	// later reset holds the change until then. 2m when zero.
	MaxRateLimitWait Duration `yaml:"maxRateLimitWait"`
	// Repo is owner/name of the config repository on GitHub: the webhook
	// acts only on its deliveries. The change source reads the fleet's
	// spec.change.github.
	Repo string `yaml:"repo"`
}

// GovernanceConfig pins the rules that judge changes.
type GovernanceConfig struct {
	// Dir is a directory of the agent's image or volumes.
	Dir string `yaml:"dir"`
	// Repo is another Git repository (the operator's, fetched with
	// repo.auth's credentials) at Ref (a branch, a tag or a full SHA).
	Repo string `yaml:"repo"`
	Ref  string `yaml:"ref"`
}

// PullRequestConfig says which pull requests are planned.
type PullRequestConfig struct {
	// PlanUntrusted plans pull requests from forks and from authors
	// without write access too (default: not; their plans run policies
	// and renders of content nobody trusted yet).
	PlanUntrusted bool `yaml:"planUntrusted"`
}

// ProtectionConfig adjusts the protected namespaces.
type ProtectionConfig struct {
	// Namespaces are protected besides convoy-system and the agent's own.
	Namespaces []string `yaml:"namespaces"`
	// AllowNamespaces lifts the protection of these (for a fleet that
	// deploys into the agent's namespace on purpose).
	AllowNamespaces []string `yaml:"allowNamespaces"`
}

// GitHubApp authenticates the agent as a GitHub App installation; the
// installation token is renewed before it expires.
type GitHubApp struct {
	ID             int64  `yaml:"id"`
	InstallationID int64  `yaml:"installationID"`
	PrivateKeyFile string `yaml:"privateKeyFile"`
}

// WebhookConfig enables POST /hooks/github.
type WebhookConfig struct {
	SecretFile string `yaml:"secretFile"`
}

// ListenConfig holds the HTTP listen address.
type ListenConfig struct {
	HTTP string `yaml:"http"`
	// StatusTokenFile, when set, holds the bearer token the status page
	// (/) and /api/status require.
	StatusTokenFile string `yaml:"statusTokenFile"`
}

// RenderConfig bounds each cluster's render.
type RenderConfig struct {
	Timeout    Duration `yaml:"timeout"`    // render.DefaultTimeout when zero
	MaxObjects int      `yaml:"maxObjects"` // render.DefaultMaxObjects when zero
	MaxBytes   int64    `yaml:"maxBytes"`   // render.DefaultMaxBytes when zero
}

// LeaderElectionConfig configures the Lease that makes one replica the
// leader. The Lease lives in the cluster the agent runs in (in-cluster
// config) or in Kubeconfig's Context for agents run outside one.
type LeaderElectionConfig struct {
	Enabled       bool     `yaml:"enabled"`
	Namespace     string   `yaml:"namespace"` // default: $POD_NAMESPACE, then convoy-system
	LeaseName     string   `yaml:"leaseName"`
	Kubeconfig    string   `yaml:"kubeconfig"` // a file; empty: in-cluster
	Context       string   `yaml:"context"`
	LeaseDuration Duration `yaml:"leaseDuration"`
	RenewDeadline Duration `yaml:"renewDeadline"`
	RetryPeriod   Duration `yaml:"retryPeriod"`
}

// LogConfig selects the log format and level.
type LogConfig struct {
	Format string `yaml:"format"` // json (default) or text
	Level  string `yaml:"level"`  // debug, info (default), warn, error
}

// Duration is a time.Duration written as "30s", "1m"; never negative.
type Duration = yamlfile.Duration

// Defaults.
const (
	DefaultPollInterval = time.Minute
	DefaultDebounce     = 2 * time.Second
	DefaultHoldRecheck  = 5 * time.Minute
	DefaultListen       = ":8080"
	DefaultLeaseName    = "convoy"
	DefaultWorkDir      = "/tmp/convoy"
)

// ConfigError lists every problem of a config file, one per line, as
// "file:line: field: problem".
type ConfigError = yamlfile.Error

// LoadConfig reads and validates the agent config file.
func LoadConfig(file string) (*Config, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", file, maxConfigSize)
	}
	return ParseConfig(file, data)
}

// ParseConfig decodes data strictly (unknown fields are errors) and
// validates it; file names the source in messages. Every problem is
// reported at once, each as file:line: field: problem.
func ParseConfig(file string, data []byte) (*Config, error) {
	cfg := &Config{file: file}
	doc, ok := yamlfile.Decode(file, data, ConfigKind, cfg)
	if ok {
		v := validator{Doc: doc}
		v.check(cfg)
	}
	if err := doc.Err(); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	return cfg, nil
}

func (c *Config) applyDefaults() {
	if c.Repo.Branch == "" {
		c.Repo.Branch = "main"
	}
	if c.Repo.PollInterval.Duration == 0 {
		c.Repo.PollInterval.Duration = DefaultPollInterval
	}
	if c.Listen.HTTP == "" {
		c.Listen.HTTP = DefaultListen
	}
	if c.Debounce.Duration == 0 {
		c.Debounce.Duration = DefaultDebounce
	}
	if c.HoldRecheck.Duration == 0 {
		c.HoldRecheck.Duration = DefaultHoldRecheck
	}
	if c.WorkDir == "" {
		c.WorkDir = DefaultWorkDir
	}
	le := &c.LeaderElection
	if le.LeaseName == "" {
		le.LeaseName = DefaultLeaseName
	}
	if le.Namespace == "" {
		le.Namespace = os.Getenv("POD_NAMESPACE")
	}
	if le.Namespace == "" {
		le.Namespace = "convoy-system"
	}
	if le.LeaseDuration.Duration == 0 {
		le.LeaseDuration.Duration = 15 * time.Second
	}
	if le.RenewDeadline.Duration == 0 {
		le.RenewDeadline.Duration = 10 * time.Second
	}
	if le.RetryPeriod.Duration == 0 {
		le.RetryPeriod.Duration = 2 * time.Second
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
}
