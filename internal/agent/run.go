package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/convoy-gitops/convoy/internal/server"
)

// shutdownGrace bounds the HTTP server's graceful shutdown.
const shutdownGrace = 10 * time.Second

// Run serves HTTP (health, readiness, metrics, webhook, status) and does
// the leader's work until ctx ends: at once without leader election, or
// while it holds the Lease. On ctx's end it stops taking work, lets the
// rollout in progress finish the cluster it is applying, releases the Lease
// and shuts the HTTP server down.
func (a *Agent) Run(ctx context.Context) error {
	var token string
	if f := a.cfg.Listen.StatusTokenFile; f != "" {
		var err error
		if token, err = readSecretFile("listen.statusTokenFile", f); err != nil {
			return err
		}
	}
	srv, err := server.New(server.Options{Addr: a.cfg.Listen.HTTP, Webhook: a.webhook, Metrics: a.metrics,
		Status: a.Status, StatusToken: token, Ready: a.Ready, Log: a.log})
	if err != nil {
		return err
	}
	addr, err := srv.Start()
	if err != nil {
		return err
	}
	a.addr.Store(addr)
	a.log.Info("serving", "address", addr, "repo", a.src.URL(), "branch", a.cfg.Repo.Branch, "identity", a.identity)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			a.log.Warn("http shutdown", "error", err)
		}
	}()
	if !a.cfg.LeaderElection.Enabled {
		a.Lead(ctx)
		return nil
	}
	return a.elect(ctx)
}

// elect campaigns for the Lease until ctx ends; while leading it does the
// leader's work. Losing the Lease stops the work (the cluster in progress
// finishes) and the replica campaigns again as a standby.
func (a *Agent) elect(ctx context.Context) error {
	le := a.cfg.LeaderElection
	cfg, err := leaseConfig(le)
	if err != nil {
		return fmt.Errorf("leaderElection: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("leaderElection: %w", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.LeaseName},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: a.identity},
	}
	for ctx.Err() == nil {
		a.role.Store("standby")
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   le.LeaseDuration.Duration,
			RenewDeadline:   le.RenewDeadline.Duration,
			RetryPeriod:     le.RetryPeriod.Duration,
			ReleaseOnCancel: true,
			Name:            le.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					a.role.Store("leader")
					a.log.Info("leading", "lease", le.Namespace+"/"+le.LeaseName, "identity", a.identity)
					a.Lead(lctx)
				},
				OnStoppedLeading: func() {
					a.role.Store("standby")
					a.log.Info("not leading", "lease", le.Namespace+"/"+le.LeaseName, "identity", a.identity)
				},
				OnNewLeader: func(id string) {
					if id != a.identity {
						a.log.Info("standby", "leader", id)
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("leaderElection: %w", err)
		}
		elector.Run(ctx)
	}
	return nil
}

// leaseConfig is the client config of the cluster holding the Lease.
func leaseConfig(le LeaderElectionConfig) (*rest.Config, error) {
	if le.Kubeconfig == "" {
		return rest.InClusterConfig()
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: le.Kubeconfig}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: le.Context}).ClientConfig()
}

// Addr is the address the agent's HTTP server listens on, once Run has
// bound it (with listen.http ":0", the port chosen); "" before.
func (a *Agent) Addr() string {
	addr, _ := a.addr.Load().(string)
	return addr
}

// LeaseHolder reads who holds the agent's Lease, for tests and tools.
func LeaseHolder(ctx context.Context, cs kubernetes.Interface, namespace, name string) (string, error) {
	var l *coordinationv1.Lease
	l, err := cs.CoordinationV1().Leases(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// Ready reports whether this replica can do its job: a standby is ready
// (it serves health and metrics and waits for the Lease); the leader is
// ready once the repository answered within the last three poll intervals.
func (a *Agent) Ready() error {
	if a.role.Load() == "standby" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	window := a.window
	if window <= 0 {
		window = max(3*a.cfg.Repo.PollInterval.Duration, time.Minute)
	}
	last := a.st.lastSuccess
	if last.IsZero() {
		if a.st.fetchErr != "" {
			return errors.New("git: " + a.st.fetchErr)
		}
		return errors.New("git: not fetched yet")
	}
	if age := time.Since(last); a.st.fetchErr != "" && age > window {
		return fmt.Errorf("git: no successful fetch for %s: %s", age.Round(time.Second), a.st.fetchErr)
	}
	return nil
}

// Status is the agent's status document for /api/status and the page.
func (a *Agent) Status() server.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := server.Status{
		Role:      a.role.Load().(string),
		Source:    server.SourceStatus{URL: a.src.URL(), Branch: a.cfg.Repo.Branch, LastFetch: a.st.lastFetch, LastSuccess: a.st.lastSuccess, Error: a.st.fetchErr},
		Holds:     append([]server.HoldStatus(nil), a.st.hold...),
		Rollouts:  append([]server.RolloutStatus(nil), a.st.history...),
		Generated: time.Now(),
	}
	if a.st.snap != nil {
		st.Revision = a.st.snap.Revision
	}
	if f := a.st.fleet; f != nil {
		st.Fleet = f.Name
		for _, w := range f.Rollout.Waves {
			ws := server.WaveStatus{Name: w.Name}
			for _, name := range w.Clusters {
				cs, ok := a.st.clusters[name]
				if !ok {
					cs = server.ClusterStatus{Name: name}
				}
				ws.Clusters = append(ws.Clusters, cs)
			}
			st.Waves = append(st.Waves, ws)
		}
	}
	return st
}
