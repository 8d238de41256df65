package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Tool names, as they appear in the tables.
const (
	toolConvoy          = "convoy"
	toolConvoyDrift     = "convoy drift check"
	toolAgentReconcile  = "convoy agent reconcile (in-process phase)"
	toolKubectl         = "kustomize build | kubectl apply --server-side"
	toolFluxDefault     = "Flux ssa (QPS 50, burst 300)"
	toolFluxUnthrottled = "Flux ssa (unthrottled)"
)

// fixedNow is the policy clock of every convoy run: a weekday night.
const fixedNow = "2026-11-25T23:30:00Z"

// target is one cluster of one run: where its kustomization is and how
// to reach it.
type target struct {
	dir        string // the cluster's kustomization directory
	kubeconfig string
	context    string
	set        string // the workload's Set (label selector for kubectl prune)
	crd        string // the workload's CRD name
	inventory  string // fluxapply's inventory file
}

func (b *bench) convoyApply(repo, kubeconfig string) []step {
	return []step{{bin: b.convoy, args: []string{"apply", "--repo", repo, "--kubeconfig", kubeconfig,
		"--change", b.changeFile, "--now", fixedNow}}}
}

func (b *bench) convoyDrift(repo, kubeconfig string) []step {
	return []step{{bin: b.self, args: []string{"drift", "--repo", repo, "--kubeconfig", kubeconfig}}}
}

// kubectlApply is `kustomize build DIR | kubectl apply --server-side -f -`.
// On a cold apply the CRD goes first, with a wait until it is established:
// kubectl cannot map custom resources whose CRD is in the same stream.
// With prune, the apply is an ApplySet whose parent is a cluster-scoped
// custom object (see applySetSetup) and --prune deletes the members no
// longer rendered: kubectl's only prune that works with server-side apply,
// and a namespaced parent (Secret, ConfigMap) cannot hold members in
// several namespaces.
func (b *bench) kubectlApply(t target, cold, prune bool) [][]step {
	kc := []string{"--kubeconfig", t.kubeconfig, "--context", t.context}
	var out [][]step
	if cold {
		out = append(out,
			[]step{{bin: b.kubectl, args: append([]string{"apply", "--server-side", "-f", filepath.Join(t.dir, "crd.yaml")}, kc...)}},
			[]step{{bin: b.kubectl, args: append([]string{"wait", "--for=condition=Established", "--timeout=60s", "crd/" + t.crd}, kc...)}})
	}
	apply := step{bin: b.kubectl, args: append([]string{"apply", "--server-side", "-f", "-"}, kc...)}
	if prune {
		apply.args = append(apply.args, "--prune", "--applyset=applysets.bench.convoy.dev/bench-"+t.set)
		apply.env = []string{"KUBECTL_APPLYSET=true"}
	}
	out = append(out, []step{{bin: b.kustomize, args: []string{"build", t.dir}}, apply})
	return out
}

// applySetCRD is the cluster-scoped ApplySet parent type for kubectl.
const applySetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: applysets.bench.convoy.dev
  labels: {applyset.kubernetes.io/is-parent-type: "true"}
spec:
  group: bench.convoy.dev
  scope: Cluster
  names: {plural: applysets, singular: applyset, kind: ApplySet, listKind: ApplySetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

// applySetSetup creates kubectl's ApplySet parent for t (and its type,
// the first time): kubectl does not create custom-type parents itself.
// Not measured: a kubectl user sets this up once.
func (b *bench) applySetSetup(t target, dir string) ([][]step, error) {
	name := "bench-" + t.set
	// The ID kubectl expects (k8s.io/kubectl/pkg/cmd/apply/applyset.go):
	// name.namespace.kind.group, hashed; the tooling annotation names kubectl.
	sum := sha256.Sum256([]byte(name + "..ApplySet.bench.convoy.dev"))
	id := "applyset-" + base64.RawURLEncoding.EncodeToString(sum[:]) + "-v1"
	parent := fmt.Sprintf("apiVersion: bench.convoy.dev/v1\nkind: ApplySet\nmetadata:\n  name: %s\n"+
		"  labels: {applyset.kubernetes.io/id: %s}\n  annotations: {applyset.kubernetes.io/tooling: kubectl/v1, applyset.kubernetes.io/contains-group-kinds: \"\"}\n", name, id)
	crd, obj := filepath.Join(dir, "applyset-crd.yaml"), filepath.Join(dir, "applyset.yaml")
	if err := os.WriteFile(crd, []byte(applySetCRD), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(obj, []byte(parent), 0o644); err != nil {
		return nil, err
	}
	kc := []string{"--kubeconfig", t.kubeconfig, "--context", t.context}
	return [][]step{
		{{bin: b.kubectl, args: append([]string{"apply", "--server-side", "-f", crd}, kc...)}},
		{{bin: b.kubectl, args: append([]string{"wait", "--for=condition=Established", "--timeout=60s", "crd/applysets.bench.convoy.dev"}, kc...)}},
		{{bin: b.kubectl, args: append([]string{"apply", "--server-side", "-f", obj}, kc...)}},
	}, nil
}

// fluxApply is `kustomize build DIR | fluxapply`: the build
// kustomize-controller runs in-process, then ApplyAllStaged with
// concurrency 4, and its garbage collection from the inventory.
func (b *bench) fluxApply(t target, unthrottled bool) []step {
	args := []string{"--kubeconfig", t.kubeconfig, "--context", t.context, "--inventory", t.inventory}
	if unthrottled {
		args = append(args, "--qps=-1", "--burst=0")
	}
	return []step{{bin: b.kustomize, args: []string{"build", t.dir}}, {bin: b.fluxapply, args: append(args, "-")}}
}

// runTool runs pipelines against p and measures them. When the last
// process prints a JSON object of durations ending in _ns (the drift
// check does), they become the sample's phases.
func (b *bench) runTool(ctx context.Context, p *planes, pipelines ...[]step) (Sample, error) {
	return measured(ctx, p, func() (Sample, error) {
		s, out, err := runSteps(ctx, nil, pipelines...)
		var phases map[string]any
		if err == nil && json.Unmarshal(out, &phases) == nil {
			for k, v := range phases {
				if n, ok := v.(float64); ok && strings.HasSuffix(k, "_ns") {
					if s.Phases == nil {
						s.Phases = map[string]time.Duration{}
					}
					s.Phases[strings.TrimSuffix(k, "_ns")] = time.Duration(n)
				}
			}
		}
		return s, err
	})
}

func describe(pipelines ...[]step) string {
	var parts []string
	for _, pl := range pipelines {
		var ps []string
		for _, s := range pl {
			ps = append(ps, filepath.Base(s.bin)+" "+strings.Join(s.args, " "))
		}
		parts = append(parts, strings.Join(ps, " | "))
	}
	return fmt.Sprint(strings.Join(parts, " && "))
}
