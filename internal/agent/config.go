package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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

// Duration is a time.Duration written as "30s", "1m".
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: expected a duration such as 30s or 5m, got %s", n.Line, n.Tag)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: expected a duration such as 30s or 5m, got %q", n.Line, s)
	}
	d.Duration = v
	return nil
}

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
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

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

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// ParseConfig decodes data strictly (unknown fields are errors) and
// validates it; file names the source in messages.
func ParseConfig(file string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &ConfigError{Problems: []string{yamlProblem(file, err)}}
	}
	if len(root.Content) == 0 {
		return nil, &ConfigError{Problems: []string{file + ":1: empty config: expected apiVersion, kind, repo"}}
	}
	cfg := &Config{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var ps []string
			for _, e := range te.Errors {
				ps = append(ps, typeProblem(file, e))
			}
			return nil, &ConfigError{Problems: ps}
		}
		return nil, &ConfigError{Problems: []string{yamlProblem(file, err)}}
	}
	v := validator{file: file, root: root.Content[0]}
	v.check(cfg)
	if len(v.problems) > 0 {
		sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].line < v.problems[j].line })
		ps := make([]string, len(v.problems))
		for i, p := range v.problems {
			ps[i] = p.text
		}
		return nil, &ConfigError{Problems: ps}
	}
	cfg.applyDefaults()
	return cfg, nil
}

func yamlProblem(file string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s:%s: %s", file, m[1], m[2])
	}
	return fmt.Sprintf("%s:1: %s", file, msg)
}

// typeProblem rewrites yaml.v3's "line 5: field x not found in type
// agent.RepoConfig" as "file:5: x: unknown field".
func typeProblem(file, e string) string {
	m := yamlLine.FindStringSubmatch(e)
	if m == nil {
		return file + ":1: " + e
	}
	msg := m[2]
	if rest, ok := strings.CutPrefix(msg, "field "); ok {
		if name, _, ok := strings.Cut(rest, " not found in type"); ok {
			return fmt.Sprintf("%s:%s: %s: unknown field", file, m[1], name)
		}
	}
	return fmt.Sprintf("%s:%s: %s", file, m[1], msg)
}

type problem struct {
	line int
	text string
}

type validator struct {
	file     string
	root     *yaml.Node
	problems []problem
}

// addf records a problem at field (a dotted path), located at the field's
// line, or its nearest present parent's.
func (v *validator) addf(field, format string, args ...any) {
	line := v.line(field)
	v.problems = append(v.problems, problem{line, fmt.Sprintf("%s:%d: %s: %s", v.file, line, field, fmt.Sprintf(format, args...))})
}

func (v *validator) line(field string) int {
	n, line := v.root, v.root.Line
	for _, key := range strings.Split(field, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line, next = n.Content[i].Line, n.Content[i+1]
				break
			}
		}
		n = next
	}
	return line
}

func (v *validator) check(c *Config) {
	if c.APIVersion != ConfigAPIVersion {
		v.addf("apiVersion", "expected %s, got %q", ConfigAPIVersion, c.APIVersion)
	}
	if c.Kind != ConfigKind {
		v.addf("kind", "expected %s, got %q", ConfigKind, c.Kind)
	}
	if c.Repo.URL == "" {
		v.addf("repo.url", "required: the config repository's URL (https://, ssh://, git@host:path, file://)")
	} else if strings.Contains(c.Repo.URL, "@") && (strings.HasPrefix(c.Repo.URL, "http://") || strings.HasPrefix(c.Repo.URL, "https://")) {
		v.addf("repo.url", "must not carry credentials; use repo.auth files")
	}
	if c.Repo.Branch != "" && (strings.ContainsAny(c.Repo.Branch, " ~^:?*[\\") || strings.HasPrefix(c.Repo.Branch, "-")) {
		v.addf("repo.branch", "%q is not a valid branch name", c.Repo.Branch)
	}
	v.positive("repo.pollInterval", c.Repo.PollInterval, true)
	v.positive("repo.timeout", c.Repo.Timeout, true)
	a := c.Repo.Auth
	methods := 0
	if a.TokenFile != "" {
		methods++
	}
	if a.UsernameFile != "" || a.PasswordFile != "" {
		methods++
		if a.UsernameFile == "" || a.PasswordFile == "" {
			v.addf("repo.auth", "usernameFile and passwordFile go together")
		}
	}
	if a.SSHKeyFile != "" {
		methods++
		if a.KnownHostsFile == "" {
			v.addf("repo.auth.knownHostsFile", "required with sshKeyFile: an unchecked host would receive the fetch")
		}
	}
	if methods > 1 {
		v.addf("repo.auth", "give one of tokenFile, usernameFile+passwordFile, sshKeyFile")
	}
	switch c.Repo.Verify.Mode {
	case "", "off":
		if c.Repo.Verify.KeysFile != "" {
			v.addf("repo.verify.keysFile", "set, but mode is off: set mode: head to verify")
		}
	case "head":
		if c.Repo.Verify.KeysFile == "" {
			v.addf("repo.verify.keysFile", "required with mode: head (armored OpenPGP public keys)")
		}
	default:
		v.addf("repo.verify.mode", "expected off or head, got %q", c.Repo.Verify.Mode)
	}
	if c.GitHub != nil && c.GitHub.API != "" && !strings.HasPrefix(c.GitHub.API, "https://") && !strings.HasPrefix(c.GitHub.API, "http://") {
		v.addf("github.api", "expected an http(s) URL, got %q", c.GitHub.API)
	}
	if !c.AllowInsecure {
		if c.GitHub != nil && strings.HasPrefix(c.GitHub.API, "http://") {
			v.addf("github.api", "%q is plain http: the token would cross the network in clear; use https (allowInsecure: true is for tests)", c.GitHub.API)
		}
		for _, scheme := range []string{"http://", "git://"} {
			if strings.HasPrefix(c.Repo.URL, scheme) {
				v.addf("repo.url", "%q is not encrypted (%s): use https:// or ssh:// (allowInsecure: true is for tests)", c.Repo.URL, strings.TrimSuffix(scheme, "://"))
			}
		}
	}
	if c.Render.MaxObjects < 0 || c.Render.MaxBytes < 0 {
		v.addf("render", "maxObjects and maxBytes must be 0 (the default) or more")
	}
	v.positive("render.timeout", c.Render.Timeout, true)
	if c.GitHub != nil && c.GitHub.Repo != "" {
		if o, r, ok := strings.Cut(c.GitHub.Repo, "/"); !ok || o == "" || r == "" || strings.Contains(r, "/") {
			v.addf("github.repo", "expected OWNER/REPO, got %q", c.GitHub.Repo)
		}
	}
	if c.GitHub != nil && c.GitHub.App != nil {
		app := c.GitHub.App
		if app.ID <= 0 {
			v.addf("github.app.id", "required: the GitHub App's ID")
		}
		if app.InstallationID <= 0 {
			v.addf("github.app.installationID", "required: the installation's ID on the config repository's owner")
		}
		if app.PrivateKeyFile == "" {
			v.addf("github.app.privateKeyFile", "required: the app's private key (PEM), mounted from a Secret")
		}
		if c.GitHub.TokenFile != "" {
			v.addf("github.tokenFile", "set with github.app: use one of them")
		}
	}
	if c.GitHub != nil {
		v.positive("github.maxRateLimitWait", c.GitHub.MaxRateLimitWait, true)
	}
	if c.Governance.Dir != "" {
		if st, err := os.Stat(c.Governance.Dir); err != nil || !st.IsDir() {
			v.addf("governance.dir", "%q is not a directory", c.Governance.Dir)
		}
		if c.Governance.Repo != "" {
			v.addf("governance", "set dir or repo, not both")
		}
	}
	if c.Governance.Ref != "" && c.Governance.Repo == "" {
		v.addf("governance.ref", "set without governance.repo")
	}
	if !c.AllowInsecure {
		for _, scheme := range []string{"http://", "git://"} {
			if strings.HasPrefix(c.Governance.Repo, scheme) {
				v.addf("governance.repo", "%q is not encrypted (%s): use https:// or ssh:// (allowInsecure: true is for tests)", c.Governance.Repo, strings.TrimSuffix(scheme, "://"))
			}
		}
	}
	if c.MaxCommits < 0 {
		v.addf("maxCommits", "must be 0 (the default, %d) or more", 100)
	}
	if c.Webhook != nil && (c.GitHub == nil || c.GitHub.Repo == "") {
		v.addf("webhook", "needs github.repo: the repository whose deliveries are acted on")
	}
	if c.Webhook != nil && c.Webhook.SecretFile == "" {
		v.addf("webhook.secretFile", "required when webhook is set: deliveries are accepted only with a valid X-Hub-Signature-256")
	}
	if c.Listen.HTTP != "" {
		if _, port, err := net.SplitHostPort(c.Listen.HTTP); err != nil {
			v.addf("listen.http", "expected host:port or :port, got %q", c.Listen.HTTP)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.addf("listen.http", "port %q: expected 0-65535", port)
		}
	}
	le := c.LeaderElection
	v.positive("leaderElection.leaseDuration", le.LeaseDuration, true)
	v.positive("leaderElection.renewDeadline", le.RenewDeadline, true)
	v.positive("leaderElection.retryPeriod", le.RetryPeriod, true)
	if le.LeaseDuration.Duration > 0 && le.RenewDeadline.Duration >= le.LeaseDuration.Duration {
		v.addf("leaderElection.renewDeadline", "must be shorter than leaseDuration (%s)", le.LeaseDuration.Duration)
	}
	if le.Context != "" && le.Kubeconfig == "" {
		v.addf("leaderElection.context", "set without leaderElection.kubeconfig")
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		v.addf("log.format", "expected json or text, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		v.addf("log.level", "expected debug, info, warn or error, got %q", c.Log.Level)
	}
	v.positive("debounce", c.Debounce, true)
	v.positive("holdRecheck", c.HoldRecheck, true)
}

func (v *validator) positive(field string, d Duration, zeroOK bool) {
	if d.Duration < 0 || (!zeroOK && d.Duration == 0) {
		v.addf(field, "must be positive, got %s", d.Duration)
	}
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
