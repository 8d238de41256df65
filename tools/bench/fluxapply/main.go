// Command fluxapply applies Kubernetes manifests the way Flux's
// kustomize-controller does: fluxcd/pkg/ssa ResourceManager.ApplyAllStaged
// with its field manager, drift-check concurrency 4 and client QPS 50 /
// burst 300 by default. It exists so `make bench` measures Flux's apply path
// on the same machine as convoy, without running the controller itself.
//
//	fluxapply [--kubeconfig F] [--context C] [--qps 50] [--burst 300] [FILE|-]...
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fluxapply:", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	kubecontext := flag.String("context", "", "kubeconfig context (the current one when empty)")
	qps := flag.Float64("qps", 50, "client QPS; kustomize-controller's default is 50, negative disables the limit")
	burst := flag.Int("burst", 300, "client burst; kustomize-controller's default is 300")
	concurrency := flag.Int("concurrency", 4, "drift-check concurrency; kustomize-controller's default is 4")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	inventory := flag.String("inventory", "", "file keeping the applied objects between runs; "+
		"objects it lists that the input no longer has are deleted, as kustomize-controller's garbage collection does")
	flag.Parse()

	objects, err := readObjects(flag.Args())
	if err != nil {
		return err
	}

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: *kubecontext}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", *kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return err
	}
	kube, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: mapper})
	if err != nil {
		return err
	}

	// As kustomize-controller: its field manager and owner labels, a kstatus
	// poller for the staged waits, concurrency 4, force off, and the
	// managed-fields cleanup of kubectl's client-side apply.
	poller := polling.NewStatusPoller(kube, mapper, polling.Options{})
	owner := ssa.Owner{Field: "kustomize-controller", Group: "kustomize.toolkit.fluxcd.io"}
	manager := ssa.NewResourceManager(kube, poller, owner)
	manager.SetConcurrency(*concurrency)
	manager.SetOwnerLabels(objects, "bench", "flux-system")

	opts := ssa.DefaultApplyOptions()
	opts.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{"kubectl.kubernetes.io/last-applied-configuration"},
		FieldManagers: []ssa.FieldManager{
			{Name: "kubectl", OperationType: "Apply"},
			{Name: "kubectl", OperationType: "Update"},
			{Name: "before-first-apply", OperationType: "Update"},
		},
		Exclusions: map[string]string{"kustomize.toolkit.fluxcd.io/ssa": "Ignore"},
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	changes, err := manager.ApplyAllStaged(ctx, objects, opts)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	counts := map[ssa.Action]int{}
	for _, e := range changes.Entries {
		counts[e.Action]++
	}
	pruned := 0
	if *inventory != "" {
		if pruned, err = collectGarbage(ctx, manager, *inventory, changes); err != nil {
			return err
		}
	}
	fmt.Printf("applied %d objects in %s: %d created, %d configured, %d unchanged, %d pruned\n",
		len(objects), time.Since(start).Round(time.Millisecond),
		counts[ssa.CreatedAction], counts[ssa.ConfiguredAction], counts[ssa.UnchangedAction], pruned)
	return nil
}

// collectGarbage deletes the objects that the inventory file lists and
// changes does not (only those that carry the owner labels, as
// kustomize-controller does), then writes changes as the new inventory.
func collectGarbage(ctx context.Context, manager *ssa.ResourceManager, file string, changes *ssa.ChangeSet) (int, error) {
	current := map[string]bool{}
	var lines []string
	for _, e := range changes.Entries {
		apiVersion := e.GroupVersion // the version only
		if g := e.ObjMetadata.GroupKind.Group; g != "" {
			apiVersion = g + "/" + apiVersion
		}
		line := strings.Join([]string{apiVersion, e.ObjMetadata.GroupKind.Kind, e.ObjMetadata.Namespace, e.ObjMetadata.Name}, " ")
		current[line] = true
		lines = append(lines, line)
	}
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return 0, err
	}
	var stale []*unstructured.Unstructured
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || current[line] {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(f[0])
		u.SetKind(f[1])
		u.SetNamespace(f[2])
		u.SetName(f[3])
		stale = append(stale, u)
	}
	pruned := 0
	if len(stale) > 0 {
		opts := ssa.DefaultDeleteOptions()
		opts.Inclusions = manager.GetOwnerLabels("bench", "flux-system")
		opts.Exclusions = map[string]string{"kustomize.toolkit.fluxcd.io/prune": "disabled"}
		cs, err := manager.DeleteAll(ctx, stale, opts)
		if err != nil {
			return 0, fmt.Errorf("prune: %w", err)
		}
		for _, e := range cs.Entries {
			if e.Action == ssa.DeletedAction {
				pruned++
			}
		}
	}
	return pruned, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// readObjects reads multi-document YAML from the files named, or from stdin
// when none is named or the name is "-".
func readObjects(paths []string) ([]*unstructured.Unstructured, error) {
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	var all []*unstructured.Unstructured
	for _, p := range paths {
		var data []byte
		var err error
		if p == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(p)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		objs, err := utils.ReadObjects(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", p, err)
		}
		all = append(all, objs...)
	}
	return all, nil
}
