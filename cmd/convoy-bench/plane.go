package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/convoy-gitops/convoy/internal/testenv"
)

// planes are fresh control planes (kube-apiserver + etcd from bin/, api
// flavour) each with a kube-controller-manager running only the deployment
// and replicaset controllers, so that Deployments (scaled to zero) become
// Available and convoy's health wait can finish, with no pod, scheduler or
// node in the way.
type planes struct {
	*testenv.Clusters
	procs []*exec.Cmd
}

// startPlanes starts one plane per name, in parallel.
func startPlanes(workDir string, names ...string) (*planes, error) {
	dir, err := os.MkdirTemp(workDir, "planes-")
	if err != nil {
		return nil, err
	}
	specs := make([]testenv.Spec, len(names))
	for i, n := range names {
		specs[i] = testenv.Spec{Name: n, Flavour: testenv.API}
	}
	cs, err := testenv.StartClusters(dir, specs...)
	if err != nil {
		if cs != nil {
			_ = cs.Stop()
		}
		return nil, fmt.Errorf("start control planes %v: %w", names, err)
	}
	p := &planes{Clusters: cs}
	assets, err := testenv.AssetsDir(false)
	if err != nil {
		p.Stop()
		return nil, err
	}
	for _, c := range p.Items {
		cmd := exec.Command(filepath.Join(assets, "kube-controller-manager"),
			"--kubeconfig="+c.KubeconfigFile, "--leader-elect=false", "--secure-port=0",
			"--controllers=deployment,replicaset", "--kube-api-qps=1000", "--kube-api-burst=2000",
			"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10")
		logf, err := os.Create(filepath.Join(filepath.Dir(c.KubeconfigFile), "kube-controller-manager.log"))
		if err != nil {
			p.Stop()
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			p.Stop()
			return nil, fmt.Errorf("start kube-controller-manager for %s: %w", c.Name, err)
		}
		go func() { _ = cmd.Wait(); logf.Close() }()
		p.procs = append(p.procs, cmd)
	}
	return p, nil
}

// Stop stops the controller managers, then the planes.
func (p *planes) Stop() {
	if p == nil {
		return
	}
	for _, cmd := range p.procs {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	p.procs = nil
	if err := p.Clusters.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: stop control planes:", err)
	}
}

// noisy are resources that the planes' own components (the API server's
// lease and endpoint reconcilers, the deployment and replicaset
// controllers) read and write; no client under test touches them.
var noisy = []string{"leases", "events", "replicasets", "endpoints", "endpointslices", "pods"}

// requests reads the request counts of every plane, summed, by verb;
// dry-run requests are counted under "<VERB> (dry-run)". Subresource
// requests (the controllers' status writes) are left out, and so are the
// deployment controller's UPDATEs of Deployments (its revision annotation):
// none of the clients measured sends an UPDATE to a Deployment. One scrape
// of /metrics per plane.
func (p *planes) requests(ctx context.Context) (testenv.Requests, error) {
	out := testenv.Requests{}
	for _, c := range p.Items {
		rows, err := c.RequestTotals(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			res, verb := r.Labels["resource"], r.Labels["verb"]
			switch {
			case res == "" || r.Labels["subresource"] != "" || slices.Contains(noisy, res):
				continue
			case res == "deployments" && verb == "UPDATE":
				continue
			case r.Labels["dry_run"] != "":
				verb += " (dry-run)"
			}
			out[verb] += r.N
		}
	}
	return out.Sub(nil), nil
}
