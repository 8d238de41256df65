package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/metrics"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/render"
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
	timeout  time.Duration // of each cluster request; 0: apply's default
	ghTuning GitHubTuning
	window   time.Duration // Ready's; 0: from the poll interval

	src       *source.Source
	srcOpts   source.Options
	pinned    *trust.Rules    // the operator's rules (governance.dir or .repo); nil: each base's; under mu
	pinSrc    *source.Source  // governance.repo; nil without
	mirror    *source.History // the config repository's history, last synced; under mu
	connector *apply.Connector
	clients   appliers // of the clusters, reused across connects
	planner   *rollout.Planner
	webhook   http.Handler
	rollouts  *server.Queue // pushes to the tracked branch
	plans     *server.Queue // pull requests to plan
	wake      chan struct{} // re-evaluate the current revision now

	busy   sync.Mutex // one rollout or drift correction at a time
	role   atomic.Value
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
		timeout: opts.ClusterTimeout, ghTuning: opts.GitHub, window: opts.ReadyWindow,
		connector: &apply.Connector{KubeconfigFile: cfg.Kubeconfig.File},
		planner: &rollout.Planner{PolicyDirs: cfg.Policies,
			Renderer:        render.Renderer{Timeout: cfg.Render.Timeout.Duration, MaxObjects: cfg.Render.MaxObjects, MaxBytes: cfg.Render.MaxBytes},
			Protected:       append([]string{os.Getenv("POD_NAMESPACE")}, cfg.Protection.Namespaces...),
			AllowNamespaces: cfg.Protection.AllowNamespaces},
		rollouts: server.NewQueue(),
		plans:    server.NewQueue(),
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
			a.connector.Local, a.connector.LocalNamespace = c, cfg.LeaderElection.Namespace
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
	a.rollouts.Add(server.Item{Kind: server.KindPush, Ref: "refs/heads/" + a.cfg.Repo.Branch, First: time.Now(), Events: 1})
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

// Lead runs the leader's work until ctx ends: the rollout loop, the drift
// loop and the pull-request plan loop. A rollout in progress when ctx ends
// finishes the cluster it is applying and starts no other.
func (a *Agent) Lead(ctx context.Context) {
	a.metrics.SetLeader(true)
	defer a.metrics.SetLeader(false)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.driftLoop(ctx) }()
	go func() { defer wg.Done(); a.planLoop(ctx) }()
	a.rolloutLoop(ctx)
	wg.Wait()
}

func (a *Agent) rolloutLoop(ctx context.Context) {
	pushes := make(chan struct{}, 1)
	go func() {
		for {
			if _, err := a.rollouts.Get(ctx); err != nil {
				return
			}
			select {
			case pushes <- struct{}{}:
			default: // one pending wake-up is enough: the branch head is fetched
			}
		}
	}()
	poll := time.NewTicker(a.cfg.Repo.PollInterval.Duration)
	defer poll.Stop()
	for {
		a.cycle(ctx)
		var holdC <-chan time.Time
		if at := a.holdAt(); !at.IsZero() {
			holdC = a.clock.After(at.Sub(a.clock.Now()))
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-pushes:
			a.debounce(ctx, pushes)
		case <-holdC:
		case <-a.wake:
		}
	}
}

// debounce waits for a burst of pushes to end, so that ten pushes in a
// second become one rollout of the newest commit.
func (a *Agent) debounce(ctx context.Context, pushes <-chan struct{}) {
	t := time.NewTimer(a.cfg.Debounce.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pushes:
			t.Reset(a.cfg.Debounce.Duration)
		case <-t.C:
			return
		}
	}
}

func (a *Agent) holdAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.result != string(rollout.Held) {
		return time.Time{}
	}
	return a.st.holdAt
}

// cycle fetches the branch head and rolls it out when there is work: a new
// revision, a hold due for re-evaluation, a retry, or an event.
func (a *Agent) cycle(ctx context.Context) {
	snap, err := a.fetch(ctx)
	if err != nil {
		return
	}
	a.recheckOnNewRules(ctx)
	for snap != nil && ctx.Err() == nil {
		if !a.needsWork(snap.Revision) {
			return
		}
		a.busy.Lock()
		next := a.rollout(ctx, snap)
		a.busy.Unlock()
		snap = next
	}
}

// fetch gets the branch head (nothing is downloaded when it did not
// move). An error keeps the last good revision and is reported.
func (a *Agent) fetch(ctx context.Context) (*source.Snapshot, error) {
	a.mu.Lock()
	last := a.st.snap
	a.mu.Unlock()
	lastRev := ""
	if last != nil {
		lastRev = last.Revision
	}
	began := time.Now()
	snap, err := a.src.Fetch(ctx, lastRev)
	a.metrics.ObserveGitFetch(time.Since(began), err)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.lastFetch = time.Now() // wall time: readiness is about git answering, not the policy clock
	if err != nil {
		if ctx.Err() == nil {
			a.st.fetchErr = err.Error()
			a.log.Error("fetch failed; keeping the last good revision", "repo", a.src.URL(), "revision", lastRev, "error", err)
		}
		return nil, err
	}
	a.st.fetchErr, a.st.lastSuccess = "", a.st.lastFetch
	if snap.Unchanged {
		return last, nil
	}
	a.log.Info("fetched", "repo", a.src.URL(), "revision", snap.Revision)
	a.st.snap = snap
	return snap, nil
}

func (a *Agent) needsWork(rev string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := &a.st
	if st.revision != rev {
		return true
	}
	recheck := st.recheck
	st.recheck = false
	switch st.result {
	case string(rollout.Held):
		return recheck || !a.clock.Now().Before(st.holdAt)
	case string(rollout.Denied):
		return recheck // new approvals or labels may lift a deny
	case string(rollout.Failed), "error":
		return st.retry || recheck
	}
	return false
}

// rollout plans and runs one revision. It returns a newer snapshot when the
// rollout was superseded by one.
func (a *Agent) rollout(ctx context.Context, snap *source.Snapshot) *source.Snapshot {
	rev := snap.Revision
	log := a.log.With("revision", short(rev))
	started := a.clock.Now()
	f, err := fleet.Load(snap.Dir)
	if err != nil {
		a.finish(ctx, rev, nil, nil, nil, started, fmt.Errorf("fleet: %w", err), false)
		return nil
	}
	// Each cluster is judged by the rules of the revision it runs, for
	// every commit it receives: the records say which, the mirror holds
	// them. Failing to read the repository judges nothing: try again.
	hist, err := a.historyOf(ctx, rev)
	if err != nil {
		a.finish(ctx, rev, f, nil, nil, started, fmt.Errorf("history: %w", err), true)
		return nil
	}
	bases := a.bases(ctx, f)
	defer a.pruneBases(bases, rev)
	v, err := a.judge(ctx, hist, rev, snap.Dir, f, bases)
	if err != nil {
		a.finish(ctx, rev, f, nil, nil, started, fmt.Errorf("judge: %w", err), true)
		return nil
	}
	gh := v.gh
	a.setReports(v.rules.Fleet)
	plan, err := a.planner.Plan(ctx, rollout.PlanInput{RepoDir: snap.Dir, Revision: rev, Fleet: f, Now: a.clock.Now(), Basis: v.basis})
	if err != nil {
		a.finish(ctx, rev, f, nil, nil, started, fmt.Errorf("plan: %w", err), retryablePlan(err))
		return nil
	}
	ch := plan.Change
	for _, t := range plan.Targets {
		a.recordDecision(t.Decision)
	}
	log.Info("planned", "fleet", f.Name, "verdict", plan.Verdict(), "category", rollout.CategoryOf(ch))

	var deployments *rollout.Deployments
	if gh != nil && plan.Verdict() != policy.Deny {
		a.mu.Lock()
		if a.st.deployedRev == rev {
			deployments = a.st.deployments
		}
		a.mu.Unlock()
		if deployments == nil {
			deployments = &rollout.Deployments{API: gh, Log: a.log}
			deployments.Start(ctx, plan)    // network calls: outside the lock
			if deployments.Answered() > 0 { // else GitHub was down: try again next attempt
				a.mu.Lock()
				a.st.deployedRev, a.st.deployments = rev, deployments
				a.mu.Unlock()
			}
		}
	}
	var newer *source.Snapshot
	waveStart := map[string]time.Time{}
	var waveMu sync.Mutex
	runner := &rollout.Runner{
		Fleet:    f,
		Connect:  a.connect(f.Name),
		Previous: a.renderAt,
		Agent:    "convoy-agent@" + a.identity,
		Log:      log,
		Now:      a.clock.Now,
		Progress: func(e rollout.Event) {
			waveMu.Lock()
			if _, ok := waveStart[e.Wave]; !ok {
				waveStart[e.Wave] = time.Now()
			}
			waveMu.Unlock()
			if deployments != nil {
				deployments.Event(ctx, e)
			}
			switch e.Step {
			case "healthy", "skipped", "failed":
				// The status page shows each cluster as it finishes,
				// not only when the whole rollout has.
				if c := f.ClusterByName(e.Cluster); c != nil {
					a.refreshCluster(ctx, f, c)
				}
			}
		},
		Superseded: func() (string, bool) {
			s, err := a.src.Fetch(ctx, rev)
			if err != nil || s.Unchanged {
				return "", false
			}
			a.mu.Lock()
			a.st.snap = s
			a.mu.Unlock()
			newer = s
			return s.Revision, true
		},
	}
	out, err := runner.Run(ctx, plan)
	// The rollout may have changed which kinds the clusters serve (CRDs
	// added, removed, re-scoped): later reads start from fresh discovery.
	a.clients.forget(f.Name, "")
	if out != nil {
		for _, c := range out.Clusters {
			if c.Action == rollout.ActionApplied || c.Action == rollout.ActionRolledBack {
				a.metrics.ObserveClusterApply(c.Name, c.Duration, c.Applied, c.Pruned)
			}
		}
		for w, t := range waveStart {
			a.metrics.ObserveWave(w, time.Since(t))
		}
		if out.Result == rollout.Superseded && deployments != nil && newer != nil {
			deployments.Supersede(ctx, out, newer.Revision)
		}
	}
	a.finish(ctx, rev, f, plan, out, started, err, retryable(out, err))
	if out != nil && out.Result == rollout.Superseded {
		return newer
	}
	return nil
}

// retryable reports whether a failed rollout is tried again at the next
// poll: it wrote nothing, or it stopped because clusters did not answer
// (refused connections, timeouts), a transient fault after which the
// records say where to resume, as they do for a restarted agent. A cluster
// that answered with a failure (unhealthy, rejected, a record conflict)
// waits for a newer revision or an event.
func retryable(out *rollout.Outcome, err error) bool {
	return out != nil && out.Result == rollout.Failed && (untouched(out) || unreachable(err))
}

// unreachable reports whether err, and every error it joins, is a request
// that got no answer from the API server.
func unreachable(err error) bool {
	for err != nil {
		if _, ok := err.(*url.Error); ok {
			return true
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs := j.Unwrap()
			for _, e := range errs {
				if !unreachable(e) {
					return false
				}
			}
			return len(errs) > 0
		}
		err = errors.Unwrap(err)
	}
	return false
}

// untouched reports whether a failed rollout wrote nothing (a cluster could
// not be reached, an object was rejected by dry-run): worth retrying.
func untouched(out *rollout.Outcome) bool {
	for _, c := range out.Clusters {
		if c.Action != rollout.ActionUntouched {
			return false
		}
	}
	return true
}

func (a *Agent) recordDecision(d policy.Decision) {
	if d.Verdict == policy.Allow && len(d.Deny)+len(d.Hold) == 0 {
		a.metrics.PolicyDecision(string(policy.Allow), "")
		return
	}
	for _, m := range d.Deny {
		a.metrics.PolicyDecision(string(policy.Deny), m.Package)
	}
	for _, m := range d.Hold {
		a.metrics.PolicyDecision(string(policy.Hold), m.Package)
	}
}

// finish records a revision's result: state, status, metrics, GitHub.
func (a *Agent) finish(ctx context.Context, rev string, f *fleet.Fleet, plan *rollout.Plan, out *rollout.Outcome, started time.Time, err error, retry bool) {
	now := a.clock.Now()
	result, reason := "error", ""
	if err != nil {
		reason = firstLine(err.Error())
	}
	if out != nil {
		result = string(out.Result)
		if out.Reason != "" {
			reason = out.Reason
		}
	}
	log := a.log.With("revision", short(rev), "result", result)
	if err != nil && result != string(rollout.Held) && result != string(rollout.Superseded) {
		log.Error("rollout ended", "reason", reason, "error", err)
	} else {
		log.Info("rollout ended", "reason", reason)
	}
	if result != "error" {
		a.metrics.RolloutFinished(result)
	} else {
		a.metrics.RolloutFinished(string(rollout.Failed))
	}

	a.mu.Lock()
	st := &a.st
	if st.revision != rev {
		st.recheck = false
	}
	st.revision, st.result, st.reason, st.retry = rev, result, reason, retry
	if f != nil {
		st.fleet = f
	}
	st.hold, st.holdAt, st.plan = nil, time.Time{}, nil
	var ch *change.Change
	if plan != nil {
		ch = plan.Change
		st.change = ch
	}
	switch result {
	case string(rollout.Held):
		until, holds := holdsOf(rev, plan)
		st.hold = holds
		st.holdAt = now.Add(a.cfg.HoldRecheck.Duration)
		if plan != nil && plan.Change == nil && a.cfg.Repo.PollInterval.Duration < a.cfg.HoldRecheck.Duration {
			// Held without a change: its source (GitHub) could not be read.
			// Try again at the next poll, not after HoldRecheck.
			st.holdAt = now.Add(a.cfg.Repo.PollInterval.Duration)
		}
		if !until.IsZero() && until.Before(st.holdAt) {
			st.holdAt = until
		}
		if !st.holdAt.After(now) {
			st.holdAt = now.Add(time.Second)
		}
	case string(rollout.Done):
		st.plan = plan
	}
	entry := server.RolloutStatus{Revision: rev, Result: result, Reason: reason, Started: started, Finished: now}
	if ch != nil {
		entry.Category = ch.Category
		if ch.PullRequest != nil {
			entry.PR = ch.PullRequest.Number
		}
	}
	if n := len(st.history); n > 0 && st.history[0].Revision == rev && st.history[0].Result == result {
		st.history[0] = entry // a hold re-evaluated: one line, not one per check
	} else {
		st.history = append([]server.RolloutStatus{entry}, st.history...)
	}
	if len(st.history) > historySize {
		st.history = st.history[:historySize]
	}
	holds := len(st.hold)
	hold := st.hold
	a.mu.Unlock()
	a.metrics.SetHoldsActive(holds)

	if gh, _ := a.github(a.reportsFleet(f)); gh != nil && rev != "" {
		state, desc := "pending", ""
		switch result {
		case string(rollout.Done):
			state, desc = "success", "rolled out to every cluster"
		case string(rollout.Held):
			desc = "held: " + reason
			if len(hold) > 0 && !hold[0].Until.IsZero() {
				desc = fmt.Sprintf("held until %s: %s", hold[0].Until.Format(time.RFC3339), reason)
			}
		case string(rollout.Superseded):
			state, desc = "success", reason
		default:
			state, desc = "failure", result+": "+reason
		}
		if err := gh.ReportStatus(ctx, rev, state, desc, "convoy/rollout"); err != nil {
			a.log.Warn("report rollout status", "revision", short(rev), "error", err)
		}
	}
	if f != nil {
		a.refreshClusters(ctx, f)
	}
	{
		a.mu.Lock()
		keep := []string{rev}
		if a.st.snap != nil {
			keep = append(keep, a.st.snap.Revision)
		}
		a.mu.Unlock()
		if err := a.src.Prune(keep...); err != nil {
			a.log.Warn("prune snapshots", "error", err)
		}
	}
}

// holdsOf lists the holds of a plan, and the earliest time one says it
// lifts.
func holdsOf(rev string, plan *rollout.Plan) (time.Time, []server.HoldStatus) {
	var earliest time.Time
	var holds []server.HoldStatus
	if plan == nil {
		return earliest, nil
	}
	for _, t := range plan.Targets {
		for _, m := range t.Decision.Hold {
			h := server.HoldStatus{Revision: rev, Cluster: t.Cluster.Name, Reason: m.Msg}
			if u, err := time.Parse(time.RFC3339, m.Until); err == nil {
				h.Until = u
				if earliest.IsZero() || u.Before(earliest) {
					earliest = u
				}
			}
			holds = append(holds, h)
		}
	}
	return earliest, holds
}

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
	ap, err := a.connectCached(f.Name)(ctx, c)
	var rec *apply.Record
	if err == nil {
		rec, err = apply.ReadRecord(ctx, ap.Client(), f.Name)
	}
	switch {
	case err != nil:
		a.clients.forget(f.Name, c.Name)
		cs.Error = firstLine(err.Error())
	case rec == nil:
		cs.Health = "never applied"
	default:
		cs.Revision, cs.AppliedAt, cs.Health, cs.Objects = rec.Revision, rec.AppliedAt, rec.Health, len(rec.Inventory)
		cs.Rules, cs.Base = rec.Change.Rules, rec.Change.Base
		if rec.Status != apply.StatusApplied {
			cs.Health = rec.Status + ": " + rec.Reason
		}
		if rec.Corrected > 0 {
			cs.Drift = fmt.Sprintf("corrected %d at %s", rec.Corrected, rec.CorrectedAt.Format(time.RFC3339))
		}
	}
	return cs
}

// connect reaches fleetName's clusters with a new Applier each time, for
// rollouts: they start from fresh discovery.
func (a *Agent) connect(fleetName string) rollout.ConnectFunc {
	return a.connectWith(fleetName, apply.New)
}

// connectCached reaches fleetName's clusters with the Appliers kept in
// a.clients, for drift reconciles and status reads.
func (a *Agent) connectCached(fleetName string) rollout.ConnectFunc {
	return a.connectWith(fleetName, a.clients.get)
}

func (a *Agent) connectWith(fleetName string, build func(cfg *rest.Config, fleetName, cluster string) (*apply.Applier, error)) rollout.ConnectFunc {
	return func(ctx context.Context, c *fleet.Cluster) (*apply.Applier, error) {
		cfg, err := a.connector.RESTConfig(ctx, c)
		if err != nil {
			return nil, err
		}
		if a.timeout > 0 {
			cfg.Timeout = a.timeout
		}
		return build(cfg, fleetName, c.Name)
	}
}

// renderAt renders one cluster at another revision, for rollback.
func (a *Agent) renderAt(ctx context.Context, revision string, c *fleet.Cluster) ([]*unstructured.Unstructured, string, error) {
	src, err := a.sourceAt(revision)
	if err != nil {
		return nil, "", err
	}
	snap, err := src.Fetch(ctx, "")
	if err != nil {
		return nil, "", err
	}
	var r render.Renderer
	res, err := r.ClusterAt(ctx, snap.Dir, c.Name)
	if err != nil {
		return nil, "", fmt.Errorf("revision %s: %w", short(revision), err)
	}
	return res.Objects, res.Hash, nil
}

// sourceAt is the repository pinned at revision (a SHA or a ref), with the
// agent's credentials and verification.
func (a *Agent) sourceAt(revision string) (*source.Source, error) {
	opt := a.srcOpts
	opt.Revision = revision
	return source.New(opt)
}

// github returns the GitHub client for the fleet's change source, nil when
// changes do not come from GitHub.
func (a *Agent) github(f *fleet.Fleet) (*change.GitHub, error) {
	if f == nil || f.Change.Source != fleet.ChangeSourceGitHub {
		return nil, nil
	}
	return a.githubFor(f.Change.GitHub.Owner, f.Change.GitHub.Repo)
}

// githubFor returns the GitHub client of owner/repo, authenticated as the
// config says (a token, or a GitHub App installation), kept while the
// repository stays the same.
func (a *Agent) githubFor(owner, repo string) (*change.GitHub, error) {
	key := owner + "/" + repo
	a.ghMu.Lock()
	defer a.ghMu.Unlock()
	if a.gh != nil && a.ghRepo == key {
		return a.gh, nil
	}
	opts := change.GitHubOptions{Owner: owner, Repo: repo, Log: a.log,
		MaxRetries: a.ghTuning.MaxRetries, Backoff: a.ghTuning.Backoff, MaxRateLimitWait: a.ghTuning.MaxRateLimitWait}
	var tokenFile string
	if gc := a.cfg.GitHub; gc != nil {
		opts.BaseURL, tokenFile = gc.API, gc.TokenFile
		if opts.MaxRateLimitWait == 0 {
			opts.MaxRateLimitWait = gc.MaxRateLimitWait.Duration
		}
		if app := gc.App; app != nil {
			auth, err := change.AppAuthFromFile(app.ID, app.InstallationID, app.PrivateKeyFile)
			if err != nil {
				return nil, fmt.Errorf("github.app: %w", err)
			}
			opts.App = auth
		}
	}
	if opts.App == nil {
		token, err := change.TokenFromEnvOrFile(tokenFile)
		if err != nil {
			return nil, err
		}
		opts.Token = token
	}
	timeout := a.ghTuning.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	opts.HTTPClient = &http.Client{Timeout: timeout, Transport: a.metrics.GitHubTransport(nil)}
	gh, err := change.NewGitHub(opts)
	if err != nil {
		return nil, err
	}
	a.gh, a.ghRepo = gh, key
	return gh, nil
}

// setReports remembers the fleet whose change source the reports (commit
// statuses, deployments) go to: the rules', never the judged revision's.
func (a *Agent) setReports(f *fleet.Fleet) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.reports = f
}

// retryablePlan reports whether a plan failed on something that passes:
// the repository or GitHub not answering, not a broken render.
func retryablePlan(err error) bool {
	return errors.Is(err, source.ErrUnreachable) || errors.Is(err, change.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// driftLoop corrects drift on the fleet's reconcile schedule, on clusters
// at the revision last rolled out, never during a rollout.
func (a *Agent) driftLoop(ctx context.Context) {
	for {
		a.mu.Lock()
		f := a.st.fleet
		a.mu.Unlock()
		wait := time.Minute // no fleet yet, or no schedule: look again later
		if f != nil && f.Reconcile.Cron != nil {
			now := a.clock.Now()
			wait = f.Reconcile.Cron.Next(now).Sub(now)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(wait):
		}
		if f == nil || f.Reconcile.Cron == nil {
			continue
		}
		a.reconcile(ctx)
	}
}

func (a *Agent) reconcile(ctx context.Context) {
	a.busy.Lock()
	defer a.busy.Unlock()
	a.mu.Lock()
	plan, f := a.st.plan, a.st.fleet
	a.mu.Unlock()
	if plan == nil || f == nil {
		return
	}
	runner := &rollout.Runner{Fleet: f, Connect: a.connectCached(f.Name), Agent: "convoy-agent@" + a.identity, Log: a.log, Now: a.clock.Now}
	out, err := runner.Reconcile(ctx, plan)
	if out != nil {
		for _, c := range out.Clusters {
			if c.Action == rollout.ReconcileFailed {
				a.clients.forget(f.Name, c.Name)
			}
		}
	}
	if err != nil {
		a.log.Error("drift correction", "revision", short(plan.Revision), "error", err)
	}
	if out != nil {
		for _, c := range out.Clusters {
			a.metrics.DriftCorrected(c.Name, len(c.Corrected))
		}
		a.refreshClusters(ctx, f)
	}
}

// planLoop plans pull requests from the webhook's plan queue, apart from
// rollouts. A review or label event on the pull request of the revision
// being held or denied re-evaluates that revision.
func (a *Agent) planLoop(ctx context.Context) {
	for {
		it, err := a.plans.Get(ctx)
		if err != nil {
			return
		}
		a.mu.Lock()
		ch, result := a.st.change, a.st.result
		a.mu.Unlock()
		if ch != nil && ch.PullRequest != nil && ch.PullRequest.Number == it.PR && (result == string(rollout.Held) || result == string(rollout.Denied)) {
			a.Recheck()
		}
		if err := a.planPR(ctx, it.PR); err != nil {
			a.log.Warn("pull request plan", "pr", it.PR, "error", err)
		}
	}
}

// planPR plans a pull request's head (refs/pull/N/head), judged by the
// rules of its base, and reports it on the pull request: a status and one
// comment of convoy's own, edited in place. Pull requests from forks or
// from authors without write access are planned only when the config says
// so.
func (a *Agent) planPR(ctx context.Context, pr int) error {
	owner, repo, ok := strings.Cut(a.cfg.GitHub.Repo, "/")
	if !ok {
		return fmt.Errorf("github.repo %q: expected OWNER/REPO", a.cfg.GitHub.Repo)
	}
	gh, err := a.githubFor(owner, repo)
	if err != nil {
		return err
	}
	ch, err := gh.PullRequestChange(ctx, pr)
	if err != nil {
		return err
	}
	if !a.cfg.PullRequests.PlanUntrusted {
		trusted := !ch.PullRequest.Fork
		if trusted {
			role, err := gh.Permission(ctx, ch.PullRequest.Author)
			if err != nil {
				return err
			}
			trusted = change.IsWriter(role)
		}
		if !trusted {
			a.log.Info("pull request plan skipped", "pr", pr, "author", ch.PullRequest.Author, "fork", ch.PullRequest.Fork, "reason", errUntrustedPullRequest)
			return nil
		}
	}
	hist, err := a.history(ctx, fmt.Sprintf("refs/pull/%d/head", pr))
	if err != nil {
		return err
	}
	head, base := ch.Revision, ch.PullRequest.BaseSHA
	if _, err := hist.Commit(head); err != nil {
		return fmt.Errorf("pull request #%d: head %s is not in refs/pull/%d/head yet: %w", pr, short(head), pr, err)
	}
	if _, err := hist.Commit(base); err != nil {
		return fmt.Errorf("pull request #%d: base %s is not on the branch: %w", pr, short(base), err)
	}
	// Pull-request snapshots live apart from the rollout's, which are
	// pruned after each rollout while a plan may be reading its own.
	cache := filepath.Join(a.cfg.WorkDir, "pull-requests")
	snap, err := hist.Snapshot(ctx, head, cache)
	if err != nil {
		return err
	}
	defer func() {
		if err := source.PruneDir(cache, snap.Revision); err != nil { // plans run one at a time
			a.log.Warn("prune pull-request snapshots", "error", err)
		}
	}()
	f, err := fleet.Load(snap.Dir)
	if err != nil {
		return err
	}
	targetRules, err := trust.Load(trust.OriginBase, head, snap.Dir)
	if err != nil {
		return err
	}
	pinned, err := a.pinnedRules(ctx)
	if err != nil {
		return err
	}
	j := &trust.Judge{History: hist, Fixed: ch, Teams: gh, Pinned: pinned, SnapshotDir: filepath.Join(a.cfg.WorkDir, "bases")}
	basis, err := j.For(ctx, base, head, targetRules)
	if err != nil {
		return err
	}
	plan, err := a.planner.Plan(ctx, rollout.PlanInput{RepoDir: snap.Dir, Revision: head, Fleet: f, Now: a.clock.Now(),
		Basis: func(context.Context, *fleet.Cluster) (*trust.Basis, error) { return basis, nil }})
	if err != nil {
		return err
	}
	return rollout.ReportPlan(ctx, gh, pr, basis.Change, plan.Document())
}

// pruneBases drops the snapshots of bases no cluster runs any more.
func (a *Agent) pruneBases(bases map[string]string, rev string) {
	keep := []string{rev}
	for _, b := range bases {
		keep = append(keep, b)
	}
	if err := source.PruneDir(filepath.Join(a.cfg.WorkDir, "bases"), keep...); err != nil {
		a.log.Warn("prune base snapshots", "error", err)
	}
}

// reportsFleet is the fleet whose change source gets the reports: the
// rules' of the last plan, or f before any.
func (a *Agent) reportsFleet(f *fleet.Fleet) *fleet.Fleet {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.reports != nil {
		return a.st.reports
	}
	return f
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " (and more)"
	}
	return s
}
