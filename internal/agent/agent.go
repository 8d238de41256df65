package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/metrics"
	"github.com/convoy-gitops/convoy/internal/queue"
	"github.com/convoy-gitops/convoy/internal/rollout"
	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/trust"
)

// Clock is the agent's time: policies are evaluated at Now, and holds wait
// on After. Tests move a fake one past a window's end.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options are what an Agent is made of besides its config.
type Options struct {
	Config  *Config
	Log     *slog.Logger     // slog.Default() when nil
	Metrics *metrics.Metrics // nil records nothing
	Clock   Clock            // the wall clock when nil
	// Identity names this replica in leases and records; $POD_NAME, then
	// the host name, when empty.
	Identity string
	// ClusterTimeout bounds each request to a cluster's API server;
	// apply.DefaultTimeout when zero. Tests shorten it.
	ClusterTimeout time.Duration
	// GitHub tunes the GitHub client; zero values keep the defaults.
	// Tests shorten them.
	GitHub GitHubTuning
	// ReadyWindow is how long fetches may fail before Ready says so; three
	// poll intervals, at least a minute, when zero. Tests shorten it.
	ReadyWindow time.Duration
}

// GitHubTuning bounds the agent's GitHub requests: Timeout each try (30s
// when zero); MaxRetries, Backoff and MaxRateLimitWait as
// change.GitHubOptions has them.
type GitHubTuning struct {
	Timeout          time.Duration
	MaxRetries       int
	Backoff          time.Duration
	MaxRateLimitWait time.Duration
}

// Agent is convoy's long-running reconciler for one fleet: it watches the
// config repository (polls, and webhook pushes for an immediate start),
// plans each new revision, rolls it out wave by wave (one rollout at a time),
// re-evaluates held revisions when their hold should lift, corrects drift on
// the fleet's schedule, and plans pull requests on their own queue.
type Agent struct {
	cfg      *Config
	log      *slog.Logger
	metrics  *metrics.Metrics
	clock    Clock
	identity string
	ghTuning GitHubTuning
	window   time.Duration // Ready's; 0: from the poll interval

	src      *source.Source
	srcOpts  source.Options
	pinned   *trust.Rules      // the operator's rules (governance.dir or .repo); nil: each base's; under mu
	pinSrc   *source.Source    // governance.repo; nil without
	mirror   *source.History   // the config repository's history, last synced; under mu
	clusters *rollout.Clusters // reached for rollouts, drift correction and records
	driver   *rollout.Driver
	webhook  http.Handler
	rollouts *queue.Queue  // pushes to the tracked branch
	plans    *queue.Queue  // pull requests to plan
	wake     chan struct{} // re-evaluate the current revision now

	busy   sync.Mutex // one rollout or drift correction at a time
	role   atomic.Value
	addr   atomic.Value // string: the HTTP server's address, once bound
	ghMu   sync.Mutex
	ghRepo string
	gh     *change.GitHub

	mu sync.Mutex
	st state
}

// state is what the agent knows between cycles; the in-cluster records
// are the truth, this only avoids re-doing work and feeds the status.
type state struct {
	started     time.Time
	snap        *source.Snapshot // newest snapshot fetched
	lastFetch   time.Time
	lastSuccess time.Time
	fetchErr    string
	next        *source.Snapshot // a newer revision found mid-rollout

	fleet    *fleet.Fleet
	reports  *fleet.Fleet // whose change source gets the reports: the rules'
	revision string       // the revision last planned
	result   string       // its result: a rollout.Result or "error"
	reason   string
	retry    bool      // failed before any write: try again at the next poll
	recheck  bool      // an event asks to re-evaluate the revision
	holdAt   time.Time // when a held revision is re-evaluated
	hold     []server.HoldStatus
	change   *change.Change
	plan     *rollout.Plan // the plan of a revision that is done, for drift
	clusters map[string]server.ClusterStatus
	history  []server.RolloutStatus
	// deployments are the GitHub deployments of deployedRev, the newest
	// revision that got them; re-evaluations of a hold reuse them.
	deployedRev string
	deployments *rollout.Deployments
}

const historySize = 20

// New builds an agent from its config: the git source, the webhook (when
// configured) and the queues. Nothing runs until Run.
func New(opts Options) (*Agent, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("agent: no config")
	}
	a := &Agent{
		cfg: cfg, log: opts.Log, metrics: opts.Metrics, clock: opts.Clock, identity: opts.Identity,
		ghTuning: opts.GitHub, window: opts.ReadyWindow,
		clusters: &rollout.Clusters{Kubeconfig: cfg.Kubeconfig.File, Timeout: opts.ClusterTimeout},
		rollouts: queue.New(),
		plans:    queue.New(),
		wake:     make(chan struct{}, 1),
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.clock == nil {
		a.clock = realClock{}
	}
	if a.identity == "" {
		a.identity = os.Getenv("POD_NAME")
	}
	if a.identity == "" {
		host, _ := os.Hostname()
		a.identity = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	a.driver = &rollout.Driver{
		Planner: &rollout.Planner{PolicyDirs: cfg.Policies,
			Budget:          rollout.Budget{Timeout: cfg.Render.Timeout.Duration, MaxObjects: cfg.Render.MaxObjects, MaxBytes: cfg.Render.MaxBytes},
			Protected:       append([]string{os.Getenv("POD_NAMESPACE")}, cfg.Protection.Namespaces...),
			AllowNamespaces: cfg.Protection.AllowNamespaces},
		Clusters: a.clusters,
		Snapshot: a.snapshotAt,
		Agent:    a.writer(),
		Log:      a.log,
		Now:      a.clock.Now,
	}
	a.role.Store("single")
	a.st.started = time.Now()

	auth, err := cfg.Repo.Auth.load()
	if err != nil {
		return nil, err
	}
	opt := source.Options{URL: cfg.Repo.URL, Branch: cfg.Repo.Branch, Auth: auth, Timeout: cfg.Repo.Timeout.Duration,
		CacheDir: filepath.Join(cfg.WorkDir, "snapshots")}
	if cfg.Repo.Verify.Mode == "head" {
		keys, err := os.ReadFile(cfg.Repo.Verify.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("repo.verify.keysFile: %w", err)
		}
		opt.Verify, opt.Keyring = source.VerifyHead, string(keys)
	}
	if err := os.MkdirAll(opt.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("workDir: %w", err)
	}
	// secretRef kubeconfigs live in the agent's own cluster and namespace.
	if local, err := leaseConfig(cfg.LeaderElection); err == nil {
		if c, err := client.New(local, client.Options{}); err == nil {
			a.clusters.Local, a.clusters.LocalNamespace = c, cfg.LeaderElection.Namespace
		}
	}
	if cfg.Governance.Dir != "" {
		if a.pinned, err = trust.Load(trust.OriginPinned, "", cfg.Governance.Dir); err != nil {
			return nil, fmt.Errorf("governance.dir: %w", err)
		}
	}
	if cfg.Governance.Repo != "" {
		g := opt
		g.URL, g.Revision, g.Verify, g.Keyring = cfg.Governance.Repo, cfg.Governance.Ref, "", ""
		g.CacheDir = filepath.Join(cfg.WorkDir, "governance")
		if err := os.MkdirAll(g.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("workDir: %w", err)
		}
		if a.pinSrc, err = source.New(g); err != nil {
			return nil, fmt.Errorf("governance.repo: %w", err)
		}
	}
	a.srcOpts = opt
	if a.src, err = source.New(opt); err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	if cfg.Webhook != nil {
		secret, err := readSecretFile("webhook.secretFile", cfg.Webhook.SecretFile)
		if err != nil {
			return nil, err
		}
		a.webhook, err = server.NewWebhook(server.WebhookOptions{Secret: []byte(secret), Repo: cfg.GitHub.Repo,
			Branch: cfg.Repo.Branch, Rollouts: a.rollouts, Plans: a.plans, Log: a.log})
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// load reads the credential files.
func (ra RepoAuth) load() (source.Auth, error) {
	var auth source.Auth
	var err error
	read := func(field, file string) string {
		if file == "" || err != nil {
			return ""
		}
		var s string
		s, err = readSecretFile(field, file)
		return s
	}
	auth.Token = read("repo.auth.tokenFile", ra.TokenFile)
	auth.Username = read("repo.auth.usernameFile", ra.UsernameFile)
	auth.Password = read("repo.auth.passwordFile", ra.PasswordFile)
	auth.SSHPassphrase = read("repo.auth.sshPassphraseFile", ra.SSHPassphraseFile)
	if key := read("repo.auth.sshKeyFile", ra.SSHKeyFile); key != "" {
		auth.SSHKey = []byte(key + "\n")
	}
	auth.KnownHostsFile = ra.KnownHostsFile
	return auth, err
}

// readSecretFile reads a mounted secret. Its content never appears in
// errors.
func readSecretFile(field, file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", field, file)
	}
	return s, nil
}

// Webhook is the GitHub webhook handler, nil when not configured.
func (a *Agent) Webhook() http.Handler { return a.webhook }

// Trigger asks for a fetch and rollout now, as a push does.
func (a *Agent) Trigger() {
	a.rollouts.Add(queue.Item{Kind: queue.KindPush, Ref: "refs/heads/" + a.cfg.Repo.Branch, First: time.Now(), Events: 1})
}

// Recheck asks to re-evaluate the current revision now (new approvals, a
// label changed).
func (a *Agent) Recheck() {
	a.mu.Lock()
	a.st.recheck = true
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " (and more)"
	}
	return s
}
