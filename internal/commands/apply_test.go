package commands

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

const (
	fleetName = "intelligent-environment"
	appNS     = "intelligent-environment"
	night     = "2026-11-25T23:30:00+08:00" // outside business hours in Asia/Shanghai
)

var waveOrder = []string{"staging", "prod-primary", "prod-secondary", "prod-edge", "dr"}

// rolloutEnv is the fixture fleet served by a git server, with a full
// cluster per fixture cluster.
type rolloutEnv struct {
	t          *testing.T
	clusters   *testenv.Clusters
	repo       *testenv.Repo
	change     string
	changeArgs []string
}

func newRolloutEnv(t *testing.T) *rolloutEnv {
	t.Helper()
	var specs []testenv.Spec
	for _, name := range waveOrder {
		specs = append(specs, testenv.Spec{Name: name, Flavour: testenv.Full})
	}
	clusters := testenv.Start(t, specs...)
	srv := testenv.NewGitServer(t)
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	repo := srv.CreateRepo(t, "fleet", filepath.Join(root, "fixtures/fleet"))
	e := &rolloutEnv{t: t, clusters: clusters, repo: repo, change: filepath.Join(root, "fixtures/changes/normal-approved.json")}
	// Test timings: a short bake and health timeout; everything else as shipped.
	fleetYAML := e.read("fleet.yaml")
	fleetYAML = strings.Replace(fleetYAML, "bake: 30s", "bake: 1s", 1)
	fleetYAML = strings.Replace(fleetYAML, "healthTimeout: 2m", "healthTimeout: 20s", 1)
	e.commit("test timings", map[string]string{"fleet.yaml": fleetYAML})
	return e
}

func (e *rolloutEnv) read(path string) string {
	data, err := os.ReadFile(filepath.Join(e.repo.WorkDir, path))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(data)
}

func (e *rolloutEnv) commit(msg string, files map[string]string) string {
	return e.repo.Commit(e.t, msg, files)
}

// apply runs convoy apply on the work tree (its HEAD is the revision),
// with the change from changeArgs (a --change file unless a test says otherwise).
func (e *rolloutEnv) apply(extra ...string) (int, string, string) {
	change := e.changeArgs
	if change == nil {
		change = []string{"--change", e.change}
	}
	args := append([]string{"apply", "--repo", e.repo.WorkDir, "--kubeconfig", e.clusters.KubeconfigFile, "--now", night}, change...)
	return run(e.t, append(args, extra...)...)
}

func (e *rolloutEnv) record(name string) *apply.Record {
	e.t.Helper()
	rec, err := apply.ReadRecord(context.Background(), e.clusters.Get(name).Client, fleetName)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

func (e *rolloutEnv) exists(cluster string, obj client.Object, ns, name string) bool {
	e.t.Helper()
	err := e.clusters.Get(cluster).Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return true
}

// writes counts each cluster's real (not dry-run) writes of the kinds
// convoy writes. Left out is what the cluster's own components write at any
// time: the heartbeats of the simulated nodes (leases, node status),
// events, status subresources, and the Pods, ReplicaSets and endpoints
// the controllers and kwok keep up to date (one such write, landing during
// the re-apply, once failed the test).
func (e *rolloutEnv) writes() map[string]int {
	out := map[string]int{}
	for _, c := range e.clusters.Items {
		n, err := c.RequestCounts(context.Background(), map[string]string{"dry_run": "", "subresource": ""},
			"leases", "nodes", "events", "pods", "replicasets", "endpoints", "endpointslices")
		if err != nil {
			e.t.Fatal(err)
		}
		out[c.Name] = n.Mutating()
	}
	return out
}

// TestApplyFleet rolls the fixture fleet out to five full clusters and
// through its life: the first rollout wave by wave, a prune, an object the
// API server rejects in the last wave, and a Deployment that never becomes
// healthy in the second wave.
func TestApplyFleet(t *testing.T) {
	e := newRolloutEnv(t)
	ctx := context.Background()

	// 1. First rollout: every cluster, strictly wave by wave. The change is
	// the merged pull request on the GitHub stand-in, and every cluster gets
	// a GitHub deployment that follows the rollout.
	rev1 := e.repo.Head(t)
	gh := testenv.NewFakeGitHub(t)
	t.Setenv("GITHUB_TOKEN", "gh-token")
	gh.AddCollaborators("write", "bob")
	gh.AddPullRequest(testenv.PR{Number: 12, Title: "Roll out the scheduler", Author: "alice", Labels: []string{"change/normal"},
		HeadSHA: strings.Repeat("cd", 20), MergeCommitSHA: rev1, Merged: true, Body: "## Rollback\nRevert the merge.\n"})
	gh.AddCommit(rev1, "alice", "Roll out the scheduler", true)
	gh.AddReview(12, testenv.Review{User: "bob", State: "APPROVED", SubmittedAt: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)})
	e.changeArgs = []string{"--github-repo", "acme/fleet-config", "--github-api", gh.URL(), "--allow-insecure"}
	code, out, errOut := e.apply()
	e.changeArgs = nil
	if code != ExitOK {
		t.Fatalf("first apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	waveIdx := map[string]int{"staging": 0, "prod-primary": 1, "prod-secondary": 2, "prod-edge": 2, "dr": 3}
	doneAt := map[int]time.Time{} // the latest record time of each wave
	for _, name := range waveOrder {
		rec := e.record(name)
		if rec == nil || rec.Revision != rev1 || rec.Status != apply.StatusApplied || rec.Health != "healthy" {
			t.Fatalf("cluster %s record = %+v, want revision %s applied and healthy", name, rec, rev1)
		}
		if w := waveIdx[name]; rec.AppliedAt.After(doneAt[w]) {
			doneAt[w] = rec.AppliedAt
		}
		if diff := cmp.Diff([]string{"bob"}, rec.Change.Approvers); diff != "" || rec.Change.Category != "normal" {
			t.Errorf("cluster %s record change = %+v (-want +got approvers):\n%s", name, rec.Change, diff)
		}
	}
	for _, name := range waveOrder {
		w := waveIdx[name]
		if at := e.record(name).AppliedAt; w > 0 && !at.After(doneAt[w-1]) {
			t.Errorf("cluster %s (wave %d) recorded at %s, not after wave %d finished at %s", name, w, at, w-1, doneAt[w-1])
		}
	}
	deployments := map[int64]string{}
	for _, d := range gh.Deployments() {
		if d.Ref != rev1 || d.Payload["category"] != "normal" {
			t.Errorf("deployment %+v, want ref %s with the change's category", d, rev1)
		}
		deployments[d.ID] = d.Environment
	}
	states := map[string][]string{}
	for _, s := range gh.DeploymentStatuses() {
		states[deployments[s.DeploymentID]] = append(states[deployments[s.DeploymentID]], s.State)
	}
	for _, name := range waveOrder {
		if diff := cmp.Diff([]string{"queued", "in_progress", "success"}, states[name]); diff != "" {
			t.Errorf("cluster %s deployment statuses (-want +got):\n%s", name, diff)
		}
	}
	// No object of wave N+1 was created before wave N was healthy: each
	// cluster's "apply" step comes after the previous wave's "healthy" steps.
	assertWaveOrder(t, errOut)
	var dep appsv1.Deployment
	if !e.exists("prod-primary", &dep, appNS, "resource-scheduler") || dep.Status.AvailableReplicas != 5 {
		t.Errorf("prod-primary scheduler: %d available replicas, want 5", dep.Status.AvailableReplicas)
	}
	if created, healthy := dep.CreationTimestamp.Time, e.record("staging").AppliedAt.Truncate(time.Second); created.Before(healthy) {
		t.Errorf("prod-primary's Deployment created at %s, before staging was healthy (%s)", created, healthy)
	}

	// A second run of the same revision writes nothing: every cluster is up to date.
	before := e.writes()
	for name, n := range before {
		if n == 0 {
			t.Errorf("cluster %s: no write counted after the first rollout; the count does not see convoy's writes", name)
		}
	}
	if code, out, errOut := e.apply(); code != ExitOK || strings.Count(out, "skipped") != 5 {
		t.Fatalf("re-apply: exit %d, want 0 with 5 skipped\n%s\n%s", code, out, errOut)
	}
	if diff := cmp.Diff(before, e.writes()); diff != "" {
		t.Errorf("re-apply of the same revision wrote to clusters (-before +after):\n%s", diff)
	}

	// 2. Prune: rev2 drops the PodDisruptionBudget and the Service. On
	// staging the Service was annotated prune: disabled by an operator,
	// and a foreign ConfigMap without convoy's labels is in the inventory by
	// mistake: both survive.
	staging := e.clusters.Get("staging").Client
	var svc corev1.Service
	if !e.exists("staging", &svc, appNS, "resource-scheduler") {
		t.Fatal("staging has no Service after the first rollout")
	}
	svc.Annotations = map[string]string{apply.AnnotationPrune: "disabled"}
	if err := staging.Update(ctx, &svc); err != nil {
		t.Fatal(err)
	}
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "resource-scheduler"}}
	if err := staging.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	rec := e.record("staging")
	rec.Inventory = append(rec.Inventory, "v1/ConfigMap/default/resource-scheduler")
	if err := apply.WriteRecord(ctx, staging, rec); err != nil {
		t.Fatal(err)
	}
	base := e.read("environments/base/kustomization.yaml")
	base = strings.Replace(base, "- pdb.yaml\n", "", 1)
	base = strings.Replace(base, "- service.yaml\n", "", 1)
	rev2 := e.commit("drop the PDB and the Service", map[string]string{"environments/base/kustomization.yaml": base})
	// Planned against the live clusters first: the diff says what will go.
	code, planDoc, errOut := runPlanJSON(t, "--repo", e.repo.WorkDir, "--kubeconfig", e.clusters.KubeconfigFile, "--change", e.change, "--now", night)
	if code != ExitOK {
		t.Fatalf("live plan: exit %d: %s", code, errOut)
	}
	for _, c := range planDoc.Clusters {
		if c.Diff == nil {
			t.Errorf("cluster %s: no live diff in the plan", c.Name)
			continue
		}
		wantDelete := []string{"policy/v1/PodDisruptionBudget/intelligent-environment/resource-scheduler", "v1/Service/intelligent-environment/resource-scheduler"}
		if c.Name == "staging" {
			wantDelete = append(wantDelete, "v1/ConfigMap/default/resource-scheduler") // the foreign object planted in its inventory
			sort.Strings(wantDelete)
		}
		if diff := cmp.Diff(wantDelete, c.Diff.Delete); diff != "" || len(c.Diff.Create) != 0 || c.Diff.Unchanged == 0 {
			t.Errorf("cluster %s live diff %+v; delete (-want +got):\n%s", c.Name, c.Diff, diff)
		}
	}
	if code, out, errOut := e.apply(); code != ExitOK {
		t.Fatalf("prune apply: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, name := range waveOrder {
		var pdb metav1.PartialObjectMetadata
		pdb.SetGroupVersionKind(schemaPDB)
		if e.exists(name, &pdb, appNS, "resource-scheduler") {
			t.Errorf("cluster %s: PodDisruptionBudget survived the prune", name)
		}
		wantSvc := name == "staging"
		if got := e.exists(name, &corev1.Service{}, appNS, "resource-scheduler"); got != wantSvc {
			t.Errorf("cluster %s: Service exists = %v, want %v", name, got, wantSvc)
		}
		if r := e.record(name); r.Revision != rev2 {
			t.Errorf("cluster %s at %s, want %s", name, r.Revision, rev2)
		}
	}
	if !e.exists("staging", &corev1.ConfigMap{}, "default", "resource-scheduler") {
		t.Error("the foreign ConfigMap without convoy's labels was pruned")
	}

	// 3. An object the API server rejects, in the last wave's cluster only:
	// nothing is written anywhere.
	drK := e.read("clusters/dr/kustomization.yaml")
	bad := "apiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: intelligent-environment}\nspec:\n  ports: [{port: 70000}]\n"
	rev3 := e.commit("a Service with an impossible port on dr", map[string]string{
		"clusters/dr/broken.yaml":              bad,
		"clusters/dr/kustomization.yaml":       strings.Replace(drK, "resources:\n", "resources:\n- broken.yaml\n", 1),
		"environments/base/resourcequota.yaml": e.read("environments/base/resourcequota.yaml") + "\n",
		"regions/cn-north/region-config.yaml":  strings.Replace(e.read("regions/cn-north/region-config.yaml"), "\ndata:\n", "\ndata:\n  REV: three\n", 1),
	})
	before = e.writes()
	code, out, errOut = e.apply()
	if code != ExitError || !strings.Contains(errOut, "cluster dr: v1/Service/intelligent-environment/broken rejected") || !strings.Contains(errOut, "70000") {
		t.Fatalf("rejected object: exit %d, stderr %q; want 2 naming cluster, object and value", code, errOut)
	}
	if diff := cmp.Diff(before, e.writes()); diff != "" {
		t.Errorf("a rejected object still caused writes (-before +after):\n%s", diff)
	}
	for _, name := range waveOrder {
		if r := e.record(name); r.Revision != rev2 {
			t.Errorf("cluster %s moved to %s after a rejected rollout of %s", name, r.Revision, rev3)
		}
	}

	// 4. A Deployment that never becomes healthy in wave 2 (its pods need a
	// node that does not exist): wave 2 fails and is rolled back, waves 3
	// and 4 are untouched, the record says why.
	primaryK := e.read("clusters/prod-primary/kustomization.yaml")
	patch := `patches:
- target: {kind: Deployment, name: resource-scheduler}
  patch: |
    - op: add
      path: /spec/template/spec/nodeSelector
      value: {convoy.dev/no-such-node: "true"}
`
	rev4 := e.commit("pin the scheduler to a node that does not exist", map[string]string{
		"clusters/dr/kustomization.yaml":           drK,
		"clusters/dr/broken.yaml":                  testenv.Deleted,
		"clusters/prod-primary/kustomization.yaml": primaryK + patch,
	})
	code, out, errOut = e.apply()
	if code != ExitDeny {
		t.Fatalf("unhealthy wave: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "Deployment/intelligent-environment/resource-scheduler") {
		t.Errorf("failure does not name the unhealthy Deployment: %s", errOut)
	}
	if r := e.record("staging"); r.Revision != rev4 || r.Status != apply.StatusApplied {
		t.Errorf("staging = %s %s, want %s applied", r.Revision, r.Status, rev4)
	}
	r := e.record("prod-primary")
	if r.Revision != rev2 || r.Status != apply.StatusRolledBack || r.FailedRevision != rev4 || !strings.Contains(r.Reason, "resource-scheduler") {
		t.Errorf("prod-primary record = revision %s status %s failed %s reason %q; want rolled back to %s, %s failed, reason naming the Deployment",
			r.Revision, r.Status, r.FailedRevision, r.Reason, rev2, rev4)
	}
	if !e.exists("prod-primary", &dep, appNS, "resource-scheduler") || dep.Spec.Template.Spec.NodeSelector != nil {
		t.Errorf("prod-primary Deployment still has nodeSelector %v after rollback", dep.Spec.Template.Spec.NodeSelector)
	}
	for _, name := range []string{"prod-secondary", "prod-edge", "dr"} {
		if r := e.record(name); r.Revision != rev2 || r.Status != apply.StatusApplied {
			t.Errorf("cluster %s = %s %s, want untouched at %s", name, r.Revision, r.Status, rev2)
		}
	}
	// The failed revision is not retried until a newer commit arrives. (The
	// rolled-back Deployment's controllers still write pods; the ConfigMaps,
	// record and region-config alike, are convoy's alone.)
	primary := e.clusters.Get("prod-primary")
	cmWrites := func() int {
		n, err := primary.RequestCounts(ctx, map[string]string{"dry_run": "", "resource": "configmaps"})
		if err != nil {
			t.Fatal(err)
		}
		return n.Mutating()
	}
	beforeCM := cmWrites()
	if code, _, errOut := e.apply(); code != ExitDeny || !strings.Contains(errOut, "failed here before") {
		t.Errorf("retry of the failed revision: exit %d, stderr %q; want 1, refused", code, errOut)
	}
	if after := cmWrites(); after != beforeCM {
		t.Errorf("retry of a failed revision wrote ConfigMaps on prod-primary (%d → %d writes)", beforeCM, after)
	}

	// 5. A newer commit unpins the scheduler. Its rollout is interrupted
	// right after the first wave is healthy; the next run resumes from the
	// records: the first wave is not applied again, the rest completes.
	rev5 := e.commit("unpin the scheduler; label staging's quota", map[string]string{
		"clusters/prod-primary/kustomization.yaml": primaryK,
		"environments/staging/quota.yaml":          strings.Replace(e.read("environments/staging/quota.yaml"), "metadata:\n", "metadata:\n  labels: {reviewed: \"2026-11\"}\n", 1),
	})
	interrupted, cancel := context.WithCancel(ctx)
	defer cancel()
	var stdout5 strings.Builder
	progress := &cancelOn{marker: "cluster staging: healthy", cancel: cancel}
	args := []string{"apply", "--repo", e.repo.WorkDir, "--kubeconfig", e.clusters.KubeconfigFile, "--now", night, "--change", e.change}
	if code := ExecuteContext(interrupted, args, &stdout5, progress); code == ExitOK {
		t.Fatalf("interrupted rollout exited 0:\n%s\n%s", stdout5.String(), progress.String())
	}
	if r := e.record("staging"); r.Revision != rev5 {
		t.Errorf("staging at %s after the interrupted rollout, want %s", r.Revision, rev5)
	}
	for _, name := range []string{"prod-primary", "prod-secondary", "prod-edge", "dr"} {
		if r := e.record(name); r.Revision != rev2 {
			t.Errorf("cluster %s at %s after a rollout interrupted after wave 1, want still %s", name, r.Revision, rev2)
		}
	}
	stagingCM := func() int {
		n, err := e.clusters.Get("staging").RequestCounts(ctx, map[string]string{"dry_run": "", "resource": "configmaps"})
		if err != nil {
			t.Fatal(err)
		}
		return n.Mutating()
	}
	before5 := stagingCM()
	if code, out, errOut := e.apply(); code != ExitOK {
		t.Fatalf("resumed rollout: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := stagingCM() - before5; n != 0 {
		t.Errorf("the resumed rollout wrote %d ConfigMaps on staging, which was already done", n)
	}
	for _, name := range waveOrder {
		if r := e.record(name); r.Revision != rev5 || r.Status != apply.StatusApplied {
			t.Errorf("cluster %s = %s %s after the resumed rollout, want %s applied", name, r.Revision, r.Status, rev5)
		}
	}

	// convoy status reads every record and checks drift: a kubectl-style
	// edit of a field convoy owns on staging shows there, nowhere else.
	regionCM := &corev1.ConfigMap{}
	if err := staging.Get(ctx, client.ObjectKey{Namespace: "intelligent-environment", Name: "region-config"}, regionCM); err != nil {
		t.Fatal(err)
	}
	regionCM.Data["REGION"] = "edited-by-hand"
	if err := staging.Update(ctx, regionCM, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run(t, "status", "--kubeconfig", e.clusters.KubeconfigFile, "--repo", e.repo.WorkDir, "-o", "json")
	var st struct{ Clusters []clusterStatus }
	if err := json.Unmarshal([]byte(out), &st); code != ExitOK || err != nil {
		t.Fatalf("status: exit %d, %v\n%s", code, err, out)
	}
	got := map[string]string{}
	for _, c := range st.Clusters {
		got[c.Name] = c.Revision[:7] + " " + c.Status + " drift " + c.Drift + " " + strings.Join(c.Drifted, ",")
	}
	want := map[string]string{}
	for _, name := range waveOrder {
		want[name] = rev5[:7] + " applied drift none "
	}
	want["staging"] = rev5[:7] + " applied drift 1 drifted v1/ConfigMap/intelligent-environment/region-config"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}

	// 6. A `convoy apply` process killed with SIGKILL after its first wave:
	// the next run completes the rollout without writing the finished
	// cluster again.
	bin := testenv.Convoy(t)
	rev6 := e.commit("label the namespace", map[string]string{
		"environments/base/namespace.yaml": strings.Replace(e.read("environments/base/namespace.yaml"), "labels:\n", "labels:\n    owner: platform-team\n", 1),
	})
	killedChild(t, bin, args, "cluster staging: healthy")
	if r := e.record("staging"); r.Revision != rev6 {
		t.Errorf("staging at %s after the killed rollout, want %s", r.Revision, rev6)
	}
	before6 := stagingCM()
	if code, out, errOut := e.apply(); code != ExitOK {
		t.Fatalf("rollout after the kill: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := stagingCM() - before6; n != 0 {
		t.Errorf("the rollout after the kill wrote %d ConfigMaps on staging, which was already done", n)
	}
	for _, name := range waveOrder {
		if r := e.record(name); r.Revision != rev6 || r.Status != apply.StatusApplied {
			t.Errorf("cluster %s = %s %s after the kill and rerun, want %s applied", name, r.Revision, r.Status, rev6)
		}
		var ns corev1.Namespace
		if e.exists(name, &ns, "", appNS); ns.Labels["owner"] != "platform-team" {
			t.Errorf("cluster %s: namespace labels %v, want owner=platform-team", name, ns.Labels)
		}
	}
}

// killedChild runs `convoy apply` as a child process and kills it with
// SIGKILL as soon as marker appears in its progress; it returns the
// progress it printed.
func killedChild(t *testing.T, bin string, args []string, marker string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), marker) {
			_ = cmd.Process.Kill()
			break
		}
	}
	err = cmd.Wait()
	if !strings.Contains(seen.String(), marker) {
		t.Fatalf("child ended (%v) without printing %q:\n%s", err, marker, seen.String())
	}
	if err == nil {
		t.Fatalf("child was not killed:\n%s", seen.String())
	}
	return seen.String()
}

// assertWaveOrder checks the progress lines: no cluster of a wave starts
// its apply before every cluster of the previous waves reported healthy.
func assertWaveOrder(t *testing.T, progress string) {
	t.Helper()
	waveOf := map[string]int{"staging": 0, "prod-primary": 1, "prod-secondary": 2, "prod-edge": 2, "dr": 3}
	healthy := map[int]int{}
	for _, line := range strings.Split(progress, "\n") {
		for name, w := range waveOf {
			if !strings.Contains(line, " cluster "+name+":") {
				continue
			}
			switch {
			case strings.Contains(line, ": apply "):
				for prev := 0; prev < w; prev++ {
					want := 1
					if prev == 2 {
						want = 2
					}
					if healthy[prev] < want {
						t.Errorf("cluster %s started applying before wave %d was healthy:\n%s", name, prev, progress)
					}
				}
			case strings.Contains(line, ": healthy "):
				healthy[w]++
			}
		}
	}
	if healthy[0]+healthy[1]+healthy[2]+healthy[3] != 5 {
		t.Errorf("want 5 healthy clusters in the progress, got %v:\n%s", healthy, progress)
	}
}

var schemaPDB = schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}

// cancelOn is a progress writer that cancels a rollout once a line with
// marker has been written.
type cancelOn struct {
	mu     sync.Mutex
	buf    strings.Builder
	marker string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.marker) {
		c.cancel()
	}
	return len(p), nil
}

func (c *cancelOn) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
