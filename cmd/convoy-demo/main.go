// Command convoy-demo is `make demo`: five local Kubernetes control planes
// with simulated nodes, fixtures/fleet as a local git repository, and the
// convoy agent rolling changes out wave by wave — an approved change, then a
// major change that business hours hold and that proceeds by itself when
// they end. It stops everything it started.
//
// The agent runs on a simulated clock that starts on a Wednesday night in
// the fleet's time zone (Asia/Shanghai) and jumps to Thursday morning for
// the major change, so the demo shows the same thing at any hour.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/agent"
	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/commands"
	"github.com/convoy-gitops/convoy/internal/metrics"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

const fleetName = "intelligent-environment"

var clusters = []string{"staging", "prod-primary", "prod-secondary", "prod-edge", "dr"}

func main() {
	fast := flag.Bool("fast", false, "short bake times (CI smoke run)")
	listen := flag.String("listen", "127.0.0.1:0", "address of the agent's HTTP server (status page, metrics)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *fast, *listen); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

type demo struct {
	repo     string // the config repository's work tree
	clusters *testenv.Clusters
	clock    *demoClock
	agent    *agent.Agent
	service  *testenv.Exporter // the canary's service, as Prometheus scrapes it
	addr     string
	began    time.Time
}

func run(ctx context.Context, fast bool, listen string) (err error) {
	d := &demo{began: time.Now()}
	root, err := testenv.ModuleRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "convoy-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	d.step("Starting five local clusters: kube-apiserver + etcd + controller-manager + scheduler + a kwok node each")
	specs := make([]testenv.Spec, len(clusters))
	for i, c := range clusters {
		specs[i] = testenv.Spec{Name: c, Flavour: testenv.Full}
	}
	d.clusters, err = testenv.StartClusters(filepath.Join(work, "clusters"), specs...)
	defer func() {
		d.step("Stopping the agent and the clusters")
		if serr := d.clusters.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	if err != nil {
		return err
	}
	d.say("clusters up: %s (kubeconfig %s)", strings.Join(clusters, ", "), d.clusters.KubeconfigFile)

	d.step("Starting Prometheus, scraping the canary's service every second (1 %% errors)")
	if d.service, err = testenv.StartExporter(); err != nil {
		return err
	}
	defer d.service.Close()
	d.service.Set(0.01, 80*time.Millisecond)
	promDir := filepath.Join(work, "prometheus")
	if err := os.MkdirAll(promDir, 0o755); err != nil {
		return err
	}
	prom, err := testenv.RunPrometheus(promDir, map[string][]string{"staging": {d.service.Addr}})
	if err != nil {
		return err
	}
	defer prom.Stop()
	d.say("prometheus at %s", prom.URL)

	d.step("Turning fixtures/fleet into a local git repository")
	d.repo = filepath.Join(work, "fleet-config")
	if err := os.MkdirAll(d.repo, 0o755); err != nil {
		return err
	}
	if err := testenv.CopyTree(filepath.Join(root, "fixtures/fleet"), d.repo); err != nil {
		return err
	}
	bake := "10s"
	if fast {
		bake = "6s" // long enough for the canary's analysis to see errors
	}
	if err := edit(filepath.Join(d.repo, "fleet.yaml"), "bake: 30s", "bake: "+bake+", analysis: [errors]"); err != nil {
		return err
	}
	// The canary wave is verified by its error rate on Prometheus, measured
	// every second through the bake (docs/analysis.md).
	if err := edit(filepath.Join(d.repo, "fleet.yaml"), "  rollout:\n    waves:\n", "  rollout:\n"+testenv.ErrorsAnalysis(prom.URL, "cn-north")+"    waves:\n"); err != nil {
		return err
	}
	d.git("init", "--quiet", "--initial-branch=main")
	rev1 := d.commit("Onboard the intelligent-environment platform\n\nChange-Category: standard\nApproved-by: Wei Chen <wei.chen@example.com>\n")
	d.say("commit %s: standard change, approved by Wei Chen (trailers change source)", rev1[:12])

	d.step("Starting the convoy agent (simulated clock: Wednesday 22:00 in Asia/Shanghai)")
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return err
	}
	d.clock = newDemoClock(time.Date(2026, 11, 25, 22, 0, 0, 0, shanghai))
	if listen == "127.0.0.1:0" {
		if listen, err = testenv.FreeAddr(); err != nil {
			return err
		}
	}
	cfgYAML := fmt.Sprintf(`apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
allowInsecure: true # the demo's git server and GitHub stand-in are local, plain http
repo: {url: %q, branch: main, pollInterval: 2s}
kubeconfig: {file: %q}
listen: {http: %q}
workDir: %q
log: {format: text}
`, "file://"+d.repo, d.clusters.KubeconfigFile, listen, filepath.Join(work, "agent"))
	cfg, err := agent.ParseConfig("demo-agent.yaml", []byte(cfgYAML))
	if err != nil {
		return err
	}
	d.addr = listen
	log := slog.New(&demoHandler{w: os.Stdout, began: d.began})
	d.agent, err = agent.New(agent.Options{Config: cfg, Log: log, Metrics: metrics.New(), Clock: d.clock, Identity: "demo"})
	if err != nil {
		return err
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.agent.Run(actx) }()
	defer func() {
		cancel()
		if aerr := <-done; aerr != nil && err == nil {
			err = aerr
		}
	}()

	d.step("First rollout: canary → primary → secondary (edge with it) → dr")
	if err := d.waitRevision(ctx, rev1, clusters, 6*time.Minute); err != nil {
		return err
	}
	if err := d.showDeployments(ctx); err != nil {
		return err
	}

	d.step("An approved normal change: label the namespace with its owner")
	if err := edit(filepath.Join(d.repo, "environments/base/namespace.yaml"), "  labels:\n", "  labels:\n    owner: platform-team\n"); err != nil {
		return err
	}
	rev2 := d.commit("Label the namespace with its owning team\n\n## Rollback\nRevert this commit.\n\nChange-Category: normal\nApproved-by: Wei Chen <wei.chen@example.com>\n")
	d.say("commit %s: normal change, approved, with a rollback plan", rev2[:12])
	if err := d.waitRevision(ctx, rev2, clusters, 4*time.Minute); err != nil {
		return err
	}

	d.step("A major change at 10:00 on Thursday: business hours hold it on production")
	d.clock.Set(time.Date(2026, 11, 26, 10, 0, 0, 0, shanghai))
	if err := edit(filepath.Join(d.repo, "environments/base/deployment.yaml"), "resource-scheduler:1.4.2", "resource-scheduler:2.0.0"); err != nil {
		return err
	}
	rev3 := d.commit("Resource scheduler 2.0\n\n## Rollback\nRoll back to image 1.4.2 by reverting this commit.\n\nChange-Category: major\nApproved-by: Wei Chen <wei.chen@example.com>\nApproved-by: Li Na <li.na@example.com>\n")
	d.say("commit %s: major change, two approvals, rollback plan", rev3[:12])
	if err := d.waitRevision(ctx, rev3, clusters[:1], 4*time.Minute); err != nil {
		return err
	}
	holds, err := d.waitHold(ctx, rev3, time.Minute)
	if err != nil {
		return err
	}
	for _, h := range holds {
		d.say("held: %s", h)
	}
	if err := d.status(ctx); err != nil {
		return err
	}

	d.step("18:00: business hours end; the hold lifts by itself (no commit, no click)")
	d.clock.Set(time.Date(2026, 11, 26, 18, 0, 1, 0, shanghai))
	if err := d.waitRevision(ctx, rev3, clusters, 6*time.Minute); err != nil {
		return err
	}
	if err := d.showDeployments(ctx); err != nil {
		return err
	}
	if err := d.status(ctx); err != nil {
		return err
	}
	d.step("A change whose canary serves errors: its analysis fails in the canary wave, and it is rolled back")
	if err := edit(filepath.Join(d.repo, "environments/base/deployment.yaml"), "resource-scheduler:2.0.0", "resource-scheduler:2.1.0"); err != nil {
		return err
	}
	rev4 := d.commit("Resource scheduler 2.1\n\n## Rollback\nRevert this commit.\n\nChange-Category: normal\nApproved-by: Wei Chen <wei.chen@example.com>\n")
	d.say("commit %s: normal change, approved; version 2.1.0 answers 8 %% of requests with errors", rev4[:12])
	go d.failWhenCanaryRuns(ctx, "resource-scheduler:2.1.0")
	rec, err := d.waitRolledBack(ctx, rev4, 3*time.Minute)
	if err != nil {
		return err
	}
	d.say("staging is back at %s: %s", rec.Revision[:12], rec.Reason)
	for _, m := range rec.Measurements {
		d.say("measured: %s", m)
	}
	if err := d.showDeployments(ctx); err != nil {
		return err
	}
	page, err := httpGet(ctx, "http://"+d.addr+"/")
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	d.say("the status page was at http://%s/ (%d bytes; JSON at /api/status, metrics at /metrics)", d.addr, len(page))
	d.say("demo done in %s", time.Since(d.began).Round(time.Second))
	return nil
}

func (d *demo) step(format string, args ...any) {
	fmt.Printf("\n==> [%5.1fs] %s\n", time.Since(d.began).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) say(format string, args ...any) {
	fmt.Printf("    %s\n", fmt.Sprintf(format, args...))
}

func (d *demo) git(args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = d.repo
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Platform Bot", "GIT_AUTHOR_EMAIL=bot@example.com",
		"GIT_COMMITTER_NAME=Platform Bot", "GIT_COMMITTER_EMAIL=bot@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		panic(fmt.Sprintf("git %s: %v\n%s", strings.Join(args, " "), err, out))
	}
	return strings.TrimSpace(string(out))
}

func (d *demo) commit(message string) string {
	d.git("add", "--all")
	d.git("commit", "--quiet", "--no-verify", "--cleanup=verbatim", "-m", message)
	rev := d.git("rev-parse", "HEAD")
	if d.agent != nil {
		d.agent.Trigger() // what a push webhook does; polling would find it within 2s
	}
	return rev
}

// waitRevision waits until every named cluster's record is at rev.
func (d *demo) waitRevision(ctx context.Context, rev string, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var behind []string
		for _, name := range names {
			rec, err := apply.ReadRecord(ctx, d.clusters.Get(name).Client, fleetName)
			if err != nil || rec == nil || rec.Revision != rev || rec.Status != apply.StatusApplied {
				behind = append(behind, name)
			}
		}
		if len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, clusters %s are not at %s", timeout, strings.Join(behind, ", "), rev[:12])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// failWhenCanaryRuns makes the canary's service answer 8 % of its requests
// with errors once staging runs image.
func (d *demo) failWhenCanaryRuns(ctx context.Context, image string) {
	for ctx.Err() == nil {
		var dep appsv1.Deployment
		key := client.ObjectKey{Namespace: fleetName, Name: "resource-scheduler"}
		if d.clusters.Get("staging").Client.Get(ctx, key, &dep) == nil {
			if cs := dep.Spec.Template.Spec.Containers; len(cs) > 0 && strings.HasSuffix(cs[0].Image, image) {
				d.service.Set(0.08, 80*time.Millisecond)
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRolledBack waits until staging's record says rev failed and was
// rolled back.
func (d *demo) waitRolledBack(ctx context.Context, rev string, timeout time.Duration) (*apply.Record, error) {
	deadline := time.Now().Add(timeout)
	for {
		rec, err := apply.ReadRecord(ctx, d.clusters.Get("staging").Client, fleetName)
		if err == nil && rec != nil && rec.FailedRevision == rev && rec.Status == apply.StatusRolledBack {
			return rec, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("staging did not roll %s back within %s", rev[:12], timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (d *demo) waitHold(ctx context.Context, rev string, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		st := d.agent.Status()
		var holds []string
		for _, h := range st.Holds {
			if h.Revision == rev {
				line := h.Cluster + ": " + h.Reason
				if !h.Until.IsZero() {
					line += " [re-evaluated at " + h.Until.Format("Mon 15:04 MST") + "]"
				}
				holds = append(holds, line)
			}
		}
		if len(holds) > 0 {
			sort.Strings(holds)
			return holds, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no hold for %s after %s", rev[:12], timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// showDeployments prints each cluster's resource-scheduler Deployment as
// the cluster's controllers and kwok nodes made it.
func (d *demo) showDeployments(ctx context.Context) error {
	fmt.Printf("    %-15s %-10s %-9s %s\n", "CLUSTER", "READY", "AVAILABLE", "IMAGE")
	for _, name := range clusters {
		var dep appsv1.Deployment
		key := client.ObjectKey{Namespace: fleetName, Name: "resource-scheduler"}
		if err := d.clusters.Get(name).Client.Get(ctx, key, &dep); err != nil {
			return fmt.Errorf("cluster %s: %w", name, err)
		}
		want := int32(1)
		if dep.Spec.Replicas != nil {
			want = *dep.Spec.Replicas
		}
		image := ""
		if cs := dep.Spec.Template.Spec.Containers; len(cs) > 0 {
			image = cs[0].Image[strings.LastIndex(cs[0].Image, "/")+1:]
		}
		fmt.Printf("    %-15s %-10s %-9d %s\n", name, fmt.Sprintf("%d/%d", dep.Status.ReadyReplicas, want), dep.Status.AvailableReplicas, image)
	}
	return nil
}

func (d *demo) status(ctx context.Context) error {
	fmt.Printf("    $ convoy status --repo fleet-config\n")
	var out, errOut strings.Builder
	code := commands.ExecuteContext(ctx, []string{"status", "--kubeconfig", d.clusters.KubeconfigFile, "--repo", d.repo}, &out, &errOut)
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		fmt.Printf("    %s\n", line)
	}
	if code != 0 {
		return fmt.Errorf("convoy status: exit %d: %s", code, errOut.String())
	}
	return nil
}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func edit(file, old, new string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), old) {
		return fmt.Errorf("%s: %q not found", file, old)
	}
	return os.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
}
