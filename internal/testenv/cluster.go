package testenv

import (
	"bytes"

	"context"
	"errors"
	"fmt"
	"github.com/go-logr/logr"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// quietLogs stops controller-runtime from printing a stack trace to say no
// logger was set; test failures carry the component logs instead.
var quietLogs sync.Once

// Flavour says which parts of Kubernetes a test cluster runs.
type Flavour string

const (
	// API is kube-apiserver and etcd: objects are stored and validated, but
	// nothing reconciles them. Fast; the default for most tests.
	API Flavour = "api"
	// Full adds kube-controller-manager, kube-scheduler and kwok nodes, so
	// Deployments get Pods that are scheduled and become Ready, and
	// ResourceQuotas are enforced.
	Full Flavour = "full"
)

// Spec describes one test cluster to start.
type Spec struct {
	Name    string  // kubeconfig context name, e.g. "staging"
	Flavour Flavour // API when empty
	Nodes   int     // kwok nodes of a Full cluster; 1 when zero
}

// Cluster is one running control plane.
type Cluster struct {
	Name    string
	Flavour Flavour
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client is a controller-runtime client over Config.
	Client client.Client
	// KubeconfigFile holds one context, named Name.
	KubeconfigFile string

	env   *envtest.Environment
	dir   string
	procs []*exec.Cmd
}

// Clusters is a set of running control planes.
type Clusters struct {
	Items []*Cluster
	// KubeconfigFile holds one context per cluster, named after it; the
	// current context is the first cluster's.
	KubeconfigFile string
}

// Get returns the named cluster, or nil.
func (cs *Clusters) Get(name string) *Cluster {
	for _, c := range cs.Items {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Start starts one control plane per spec, in parallel, and stops them all
// when the test ends, whether it passes, fails or panics.
func Start(t testing.TB, specs ...Spec) *Clusters {
	t.Helper()
	cs, err := StartClusters(t.TempDir(), specs...)
	if cs != nil {
		t.Cleanup(func() {
			if err := cs.Stop(); err != nil {
				t.Logf("stop clusters: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// StartClusters starts one control plane per spec, in parallel, with their
// files under base, outside of a test (make demo, benchmarks). The caller
// must Stop them, also after an error (the ones that started are stopped).
func StartClusters(base string, specs ...Spec) (*Clusters, error) {
	quietLogs.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	full := false
	for _, s := range specs {
		full = full || s.Flavour == Full
	}
	assets, err := AssetsDir(full)
	if err != nil {
		return nil, err
	}
	cs := &Clusters{Items: make([]*Cluster, len(specs))}
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := startCluster(s, assets, filepath.Join(base, s.Name))
			cs.Items[i], errs[i] = c, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return cs, err
	}
	cs.KubeconfigFile = filepath.Join(base, "kubeconfig")
	if err := writeKubeconfig(cs.KubeconfigFile, cs.Items...); err != nil {
		return cs, err
	}
	return cs, nil
}

// Stop stops every cluster that started.
func (cs *Clusters) Stop() error {
	var errs []error
	for _, c := range cs.Items {
		if c != nil {
			if err := c.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop cluster %s: %w", c.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func startCluster(s Spec, assets, dir string) (*Cluster, error) {
	if s.Flavour == "" {
		s.Flavour = API
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start cluster %s: %w", s.Name, err)
	}
	// Tests create many objects at once; client-go's 5 QPS would make them slow.
	cfg.QPS, cfg.Burst = 500, 1000
	c := &Cluster{Name: s.Name, Flavour: s.Flavour, Config: cfg, env: env, dir: dir}
	c.KubeconfigFile = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(c.KubeconfigFile, c); err != nil {
		_ = c.Stop()
		return nil, err
	}
	c.Client, err = client.New(cfg, client.Options{})
	if err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("client for cluster %s: %w", s.Name, err)
	}
	if s.Flavour == Full {
		if err := c.startNodes(assets, max(s.Nodes, 1)); err != nil {
			_ = c.Stop()
			return nil, fmt.Errorf("start cluster %s: %w", s.Name, err)
		}
	}
	return c, nil
}

// startNodes runs kube-controller-manager, kube-scheduler and kwok against
// the API server and registers n kwok nodes, waiting until they are Ready.
func (c *Cluster) startNodes(assets string, n int) error {
	kc := "--kubeconfig=" + c.KubeconfigFile
	stages, err := filepath.Glob(filepath.Join(assets, "kwok-stages", "*.yaml"))
	if err != nil || len(stages) == 0 {
		return fmt.Errorf("no kwok stage definitions in %s/kwok-stages", assets)
	}
	kwokArgs := []string{kc, "--manage-all-nodes=true", "--server-address=", "--node-lease-duration-seconds=40"}
	for _, s := range stages {
		kwokArgs = append(kwokArgs, "-c", s)
	}
	for _, p := range []struct {
		name string
		args []string
	}{
		{"kube-controller-manager", []string{kc, "--leader-elect=false", "--controllers=*,-serviceaccount-token",
			"--secure-port=0", "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10"}},
		{"kube-scheduler", []string{kc, "--leader-elect=false", "--secure-port=0"}},
		{"kwok", kwokArgs},
	} {
		if err := c.startProcess(filepath.Join(assets, p.name), p.args...); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		node := kwokNode(fmt.Sprintf("kwok-node-%d", i))
		if err := c.Client.Create(ctx, node); err != nil {
			return fmt.Errorf("create node %s: %w", node.Name, err)
		}
	}
	for {
		var nodes corev1.NodeList
		if err := c.Client.List(ctx, &nodes); err == nil && readyNodes(nodes.Items) == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kwok nodes not Ready after 60s; logs in %s", c.dir)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readyNodes(nodes []corev1.Node) int {
	ready := 0
	for _, n := range nodes {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready
}

// kwokNode is a node that kwok manages: big enough for any test workload.
func kwokNode(name string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("512Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
		"nvidia.com/gpu":      resource.MustParse("16"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}

func (c *Cluster) startProcess(bin string, args ...string) error {
	name := filepath.Base(bin)
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the test binary, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); logf.Close() }()
	c.procs = append(c.procs, cmd)
	return nil
}

// Stop stops every process of the cluster.
func (c *Cluster) Stop() error {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		if p.Process != nil {
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		}
	}
	c.procs = nil
	if c.env == nil {
		return nil
	}
	err := c.env.Stop()
	c.env = nil
	return err
}

// Logs returns the tail of a component's log ("kube-scheduler", "kwok", …),
// for test failure messages.
func (c *Cluster) Logs(component string) string {
	data, _ := os.ReadFile(filepath.Join(c.dir, component+".log"))
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return string(bytes.TrimSpace(data))
}

// writeKubeconfig writes one context per cluster, named after it, with the
// admin credentials envtest made.
func writeKubeconfig(path string, clusters ...*Cluster) error {
	kc := clientcmdapi.NewConfig()
	names := make([]string, 0, len(clusters))
	for _, c := range clusters {
		cfg := c.Config
		kc.Clusters[c.Name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
		kc.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
		kc.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name}
		names = append(names, c.Name)
	}
	if len(clusters) > 0 {
		kc.CurrentContext = clusters[0].Name
	}
	sort.Strings(names)
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig %s for %v: %w", path, names, err)
	}
	return nil
}
