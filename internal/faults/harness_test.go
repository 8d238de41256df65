package faults_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/agent"
	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/metrics"
	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// The tests share the package's control planes (testenv.Shared: staging,
// prod, dr). They run one after the other and each uses its own fleet
// (record convoy-<fleet>) and namespace, so request counts taken within a
// test are its own.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var clusterNames = []string{"staging", "prod", "dr"}

// fleetSpec is testenv.Fleet with the faults' variations. name is the
// fleet's and its namespace's name.
type fleetSpec struct {
	name   string
	bake   string // the canary's bake, "" for none
	github bool   // changes from the fake GitHub instead of commit trailers
}

// state is what a revision renders: the settings' version on every
// cluster, and big more ConfigMaps on prod.
type state struct {
	version int
	big     int
}

const approved = testenv.Approved

// files are the repository's files for s.
func (f fleetSpec) files(s state) map[string]string {
	fl := testenv.Fleet{Name: f.name, Bake: f.bake, HealthTimeout: "20s"}
	if f.github {
		fl.Change = testenv.GitHubChange
	}
	files := fl.Files(s.version)
	files["clusters/prod/big.yaml"] = testenv.Deleted
	if s.big > 0 {
		var b strings.Builder
		for i := range s.big {
			if i > 0 {
				b.WriteString("---\n")
			}
			fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: item-%03d\n  namespace: %s\ndata:\n  version: \"%d\"\n", i, f.name, s.version)
		}
		files["clusters/prod/big.yaml"] = b.String()
		files["clusters/prod/kustomization.yaml"] = "resources: [../../base, big.yaml]\n"
	}
	return files
}

// want is the object IDs a cluster holds at s, sorted as in a record.
func (f fleetSpec) want(cluster string, s state) []string {
	ids := []string{"v1/ConfigMap/" + f.name + "/settings", "v1/Namespace//" + f.name}
	if cluster == "prod" {
		for i := range s.big {
			ids = append(ids, fmt.Sprintf("v1/ConfigMap/%s/item-%03d", f.name, i))
		}
	}
	sort.Strings(ids)
	return ids
}

// env is one test's fleet: its git repository and the agents it runs.
type env struct {
	t    *testing.T
	spec fleetSpec
	git  *testenv.GitServer
	repo *testenv.Repo
}

// newEnv serves a repository whose first commit renders s.
func newEnv(t *testing.T, spec fleetSpec, s state) *env {
	t.Helper()
	e := &env{t: t, spec: spec, git: testenv.NewGitServer(t)}
	e.repo = e.git.CreateRepo(t, spec.name, "")
	e.repo.Commit(t, "fleet "+spec.name+approved, spec.files(s))
	return e
}

// commit pushes a commit that renders s and returns its SHA.
func (e *env) commit(s state) string {
	e.t.Helper()
	return e.repo.Commit(e.t, fmt.Sprintf("version %d, %d big%s", s.version, s.big, approved), e.spec.files(s))
}

// config is an agent config reaching the clusters through kubeconfig,
// polling every poll; extra is appended to the YAML.
func (e *env) config(kubeconfig string, poll time.Duration, extra string) *agent.Config {
	e.t.Helper()
	yaml := testenv.AgentConfig{RepoURL: e.repo.URL, Kubeconfig: kubeconfig, Poll: poll, Repo: "timeout: 10s",
		Extra: "debounce: 100ms\n" + extra}.YAML(e.t)
	cfg, err := agent.ParseConfig("agent.yaml", []byte(yaml))
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

// kubeconfig writes a kubeconfig reaching the proxied clusters through
// their proxies, the others directly.
func kubeconfig(t *testing.T, proxies ...*testenv.APIProxy) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := testenv.Shared(t).KubeconfigVia(path, proxies...); err != nil {
		t.Fatal(err)
	}
	return path
}

// running is an agent run in the test process.
type running struct {
	*agent.Agent
	metrics *metrics.Metrics
	logs    *testenv.LogBuffer
	stop    func()
}

// start runs an agent until the test ends or stop is called. opts.Config,
// Log, Metrics and Identity are filled in.
func (e *env) start(cfg *agent.Config, identity string, opts agent.Options) *running {
	e.t.Helper()
	r := &running{metrics: metrics.New(), logs: &testenv.LogBuffer{}}
	opts.Config, opts.Metrics, opts.Identity = cfg, r.metrics, identity
	opts.Log = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := agent.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Agent = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("agent %s: %v", identity, err)
				}
			case <-time.After(60 * time.Second):
				e.t.Errorf("agent %s did not stop within 60s", identity)
			}
		})
	}
	e.t.Cleanup(func() {
		r.stop()
		if e.t.Failed() {
			e.t.Logf("logs of agent %s:\n%s", identity, r.logs.String())
		}
	})
	return r
}

// waitStatus polls the agent's status until cond holds, and returns it.
func waitStatus(t *testing.T, a *running, timeout time.Duration, what string, cond func(server.Status) bool) server.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := a.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still waiting for %s; last rollouts %+v, holds %+v, source %+v", timeout, what, st.Rollouts, st.Holds, st.Source)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastRollout is the newest rollout of the status, or a zero one.
func lastRollout(st server.Status) server.RolloutStatus {
	if len(st.Rollouts) == 0 {
		return server.RolloutStatus{}
	}
	return st.Rollouts[0]
}

// clusterStatus is the named cluster's entry in the status.
func clusterStatus(st server.Status, name string) server.ClusterStatus {
	for _, w := range st.Waves {
		for _, c := range w.Clusters {
			if c.Name == name {
				return c
			}
		}
	}
	return server.ClusterStatus{}
}

// record reads a cluster's record of the fleet directly (never through a
// proxy); nil when there is none.
func (e *env) record(cluster string) *apply.Record {
	e.t.Helper()
	rec, err := apply.ReadRecord(context.Background(), testenv.Shared(e.t).Get(cluster).Client, e.spec.name)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

// waitRevision waits until each named cluster's record says rev, applied.
func (e *env) waitRevision(rev string, timeout time.Duration, names ...string) {
	e.t.Helper()
	testenv.WaitFor(e.t, timeout, fmt.Sprintf("%v at %s", names, source.Short(rev)), func() bool {
		for _, c := range names {
			if rec := e.record(c); rec == nil || rec.Revision != rev || rec.Status != apply.StatusApplied {
				return false
			}
		}
		return true
	})
}

// live lists the fleet's objects on a cluster: every ConfigMap in its
// namespace (labelled or not, so a foreign or leftover one shows) and the
// namespace itself, as object IDs with the ConfigMaps' versions.
func (e *env) live(cluster string) (ids []string, versions map[string]string) {
	e.t.Helper()
	c := testenv.Shared(e.t).Get(cluster).Client
	ctx := context.Background()
	versions = map[string]string{}
	var ns corev1.Namespace
	err := c.Get(ctx, client.ObjectKey{Name: e.spec.name}, &ns)
	switch {
	case apierrors.IsNotFound(err):
		return nil, versions
	case err != nil:
		e.t.Fatal(err)
	}
	if ns.DeletionTimestamp == nil {
		ids = append(ids, "v1/Namespace//"+e.spec.name)
	}
	var cms corev1.ConfigMapList
	if err := c.List(ctx, &cms, client.InNamespace(e.spec.name)); err != nil {
		e.t.Fatal(err)
	}
	for _, cm := range cms.Items {
		if cm.Name == "kube-root-ca.crt" {
			continue
		}
		id := "v1/ConfigMap/" + cm.Namespace + "/" + cm.Name
		ids = append(ids, id)
		versions[id] = cm.Data["version"]
	}
	sort.Strings(ids)
	return ids, versions
}

// checkAt asserts a cluster's exact state at revision rev rendering s: its
// record (revision, status, inventory) and its live objects, none missing,
// none extra, each at s's version and carrying the owner labels.
func (e *env) checkAt(cluster, rev string, s state) {
	e.t.Helper()
	want := e.spec.want(cluster, s)
	rec := e.record(cluster)
	if rec == nil {
		e.t.Errorf("cluster %s: no record, want one at %s", cluster, source.Short(rev))
		return
	}
	if rec.Revision != rev || rec.Status != apply.StatusApplied || rec.FailedRevision != "" || rec.Fleet != e.spec.name || rec.Cluster != cluster {
		e.t.Errorf("cluster %s: record %s/%s at %s status %s failed %q, want %s/%s at %s applied", cluster, rec.Fleet, rec.Cluster,
			source.Short(rec.Revision), rec.Status, rec.FailedRevision, e.spec.name, cluster, source.Short(rev))
	}
	if diff := cmp.Diff(want, rec.Inventory); diff != "" {
		e.t.Errorf("cluster %s: record inventory (-want +got):\n%s", cluster, diff)
	}
	ids, versions := e.live(cluster)
	if diff := cmp.Diff(want, ids); diff != "" {
		e.t.Errorf("cluster %s: live objects (-want +got):\n%s", cluster, diff)
	}
	wrong := 0
	for id, v := range versions {
		if v != fmt.Sprint(s.version) {
			wrong++
			if wrong <= 3 {
				e.t.Errorf("cluster %s: %s has version %s, want %d", cluster, id, v, s.version)
			}
		}
	}
	if wrong > 3 {
		e.t.Errorf("cluster %s: %d objects in all at the wrong version", cluster, wrong)
	}
	c := testenv.Shared(e.t).Get(cluster).Client
	var owned corev1.ConfigMapList
	if err := c.List(context.Background(), &owned, client.InNamespace(e.spec.name),
		client.MatchingLabels{apply.LabelFleet: e.spec.name, apply.LabelCluster: cluster}); err != nil {
		e.t.Fatal(err)
	}
	if len(owned.Items) != len(versions) {
		e.t.Errorf("cluster %s: %d of %d ConfigMaps carry the owner labels", cluster, len(owned.Items), len(versions))
	}
}

// checkUntouched asserts that the fleet never reached a cluster: no
// record, no namespace, no object.
func (e *env) checkUntouched(cluster string) {
	e.t.Helper()
	if rec := e.record(cluster); rec != nil {
		e.t.Errorf("cluster %s: record at %s, want none", cluster, source.Short(rec.Revision))
	}
	if ids, _ := e.live(cluster); len(ids) != 0 {
		e.t.Errorf("cluster %s: objects %v, want none", cluster, ids)
	}
}

// writes counts the ConfigMap requests (render objects and records,
// dry-runs left out) a cluster's API server has answered so far, by verb,
// from its apiserver_request_total.
func writes(t *testing.T, cluster string) testenv.Requests {
	t.Helper()
	n, err := testenv.Shared(t).Get(cluster).RequestCounts(context.Background(), map[string]string{"resource": "configmaps", "dry_run": ""})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// allWrites counts writes on every cluster.
func allWrites(t *testing.T) map[string]testenv.Requests {
	t.Helper()
	out := map[string]testenv.Requests{}
	for _, c := range clusterNames {
		out[c] = writes(t, c)
	}
	return out
}

// wroteSince returns each cluster's mutating ConfigMap requests since before.
func wroteSince(t *testing.T, before map[string]testenv.Requests) map[string]int {
	t.Helper()
	out := map[string]int{}
	for c, b := range before {
		out[c] = writes(t, c).Sub(b).Mutating()
	}
	return out
}
