package main

// The render and policy scenarios: convoy against the kustomize CLI and
// conftest, on the same inputs.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// render renders k cluster overlays over shared bases of n objects each.
func (b *bench) render(ctx context.Context, k, n int) error {
	sc := b.scenario(fmt.Sprintf("render-%d", k), fmt.Sprintf("Render: %d cluster overlays over shared bases, %d objects each", k, n),
		"convoy: one `convoy render` of the whole fleet (every cluster, in one process). kustomize: one `kustomize build` per cluster, one after the other. No cluster involved. convoy's kustomize is sigs.k8s.io/kustomize/api with the patch of internal/third_party (duplicate checks and name references linear instead of quadratic in the objects); the kustomize CLI is upstream's, unpatched, as every baseline's `kustomize build` is.")
	dir := filepath.Join(b.work, "render")
	w := Workload{Seed: b.seed, Objects: n, Set: "render"}
	clusters, err := writeRenderRepo(dir, k, w.Generate())
	if err != nil {
		return err
	}
	convoyPl := [][]step{{{bin: b.convoy, args: []string{"render", "--repo", dir, "-o", "yaml"}}}}
	var kustPl [][]step
	for _, c := range clusters {
		kustPl = append(kustPl, []step{{bin: b.kustomize, args: []string{"build", filepath.Join(dir, "clusters", c)}}})
	}
	sc.command(toolConvoy, describe(convoyPl...))
	sc.command("kustomize build ×"+fmt.Sprint(k), describe(kustPl[0])+"  (× each cluster)")
	// Both must render the same number of objects.
	_, out, err := runSteps(ctx, nil, convoyPl...)
	if err != nil {
		return err
	}
	if got, want := len(topLevelKind.FindAll(out, -1)), k*n; got != want {
		sc.Notes = append(sc.Notes, fmt.Sprintf("check: convoy render printed %d objects, expected %d", got, want))
	}
	for round := range b.runs {
		for _, tool := range rotate([]string{toolConvoy, "kustomize build ×" + fmt.Sprint(k)}, round) {
			pl := convoyPl
			if tool != toolConvoy {
				pl = kustPl
			}
			s, err := b.runTool(ctx, nil, pl...)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", sc.ID, tool, err)
			}
			sc.add(tool, s)
			b.logf("  %-48s run %d: %s", tool, round+1, brief(s))
		}
	}
	return nil
}

// policyEval evaluates the built-in policies over n objects.
func (b *bench) policyEval(ctx context.Context, n int) error {
	sc := b.scenario(fmt.Sprintf("policy-%d", n), fmt.Sprintf("Policy: built-in policies over %s objects, one cluster", thousands(n)),
		"Same input document (the policy input, written once by convoy's policy.BuildInput) and the same policies/*.rego (without their _test.rego files) for both. conftest evaluates them as they are with --all-namespaces and the fleet's policy data under data.convoy.config; it collects deny and warn (it has no notion of hold, so it evaluates less than convoy does).",
		"convoy's engine replaces the quota policy's pure-Rego indexing of the objects by a Go implementation of the same function (policy/quota_index.go); conftest runs the pure-Rego version. That is the main difference measured.",
		"`convoy engine (in-process)` is policy.Engine.Evaluate on an input already in memory, engine compiled once: what the agent pays per cluster per change; its CPU is the harness's own (getrusage RUSAGE_SELF) and it has no RSS of its own.")
	dir := filepath.Join(b.work, "policy")
	w := Workload{Seed: b.seed, Objects: n, Set: "policy"}
	objs := w.Generate()
	spec := fleetSpec{Name: "policy-bench", Waves: [][]string{{"c1"}}}
	if err := os.MkdirAll(filepath.Join(dir, "clusters", "c1"), 0o755); err != nil {
		return err
	}
	f, err := fleet.Parse("fleet.yaml", []byte(fleetYAML(spec)), dir)
	if err != nil {
		return err
	}
	us := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		us[i] = &unstructured.Unstructured{Object: deepCopy(o.Body)}
	}
	ch := &change.Change{Revision: "0123456789abcdef0123456789abcdef01234567", Category: change.Normal,
		PullRequest: &change.PullRequest{Number: 1, Author: "alice", Body: "## Rollback\nRevert the merge.\n", Merged: true},
		Approvals:   []change.Approval{{User: "bob", Permission: "write", Type: change.TypeUser}}}
	now, _ := time.Parse(time.RFC3339, fixedNow)
	input, err := policy.BuildInput(f, &f.Clusters[0], ch, us, nil, now)
	if err != nil {
		return err
	}
	inputJSON, err := json.Marshal(input)
	if err != nil {
		return err
	}
	data := f.PolicyData
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	inputFile := filepath.Join(dir, "input.json")
	if err := os.WriteFile(inputFile, inputJSON, 0o644); err != nil {
		return err
	}
	dataJSON, _ := json.Marshal(data)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), dataJSON, 0o644); err != nil {
		return err
	}
	wrapped, _ := json.Marshal(map[string]any{"convoy": map[string]any{"config": data}})
	if err := os.WriteFile(filepath.Join(dir, "data", "data.json"), wrapped, 0o644); err != nil {
		return err
	}
	policyDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(policyDir, 0o755); err != nil {
		return err
	}
	regos, _ := filepath.Glob(filepath.Join(b.root, "policies", "*.rego"))
	for _, r := range regos {
		if strings.HasSuffix(r, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(r)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(policyDir, filepath.Base(r)), src, 0o644); err != nil {
			return err
		}
	}
	convoyPl := [][]step{{{bin: b.convoy, args: []string{"policy", "eval", "--input", inputFile, "--data", filepath.Join(dir, "config.json")}}}}
	conftestPl := [][]step{{{bin: b.conftest, args: []string{"test", inputFile, "--policy", policyDir, "--data", filepath.Join(dir, "data"),
		"--all-namespaces", "--no-color"}}}}
	const toolConftest = "conftest test"
	const toolEngine = "convoy engine (in-process)"
	sc.command(toolConvoy+" policy eval", describe(convoyPl...))
	sc.command(toolConftest, describe(conftestPl...))
	engine, err := policy.New(policy.Options{Data: data})
	if err != nil {
		return err
	}
	if d := engine.Evaluate(ctx, input); d.Verdict != policy.Allow {
		return fmt.Errorf("%s: convoy's verdict is %s, want allow: %v", sc.ID, d.Verdict, d.Deny)
	}
	for round := range b.runs {
		for _, tool := range rotate([]string{toolConvoy + " policy eval", toolConftest, toolEngine}, round) {
			var s Sample
			switch tool {
			case toolEngine:
				s = inProcess(func() { engine.Evaluate(ctx, input) })
			case toolConftest:
				s, _, err = runSteps(ctx, nil, conftestPl...)
			default:
				s, _, err = runSteps(ctx, nil, convoyPl...)
			}
			if err != nil {
				return fmt.Errorf("%s: %s: %w", sc.ID, tool, err)
			}
			sc.add(tool, s)
			b.logf("  %-48s run %d: %s", tool, round+1, brief(s))
		}
	}
	return nil
}

// inProcess measures fn in this process: wall time and getrusage
// RUSAGE_SELF CPU (the harness does nothing else meanwhile).
func inProcess(fn func()) Sample {
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	fn()
	wall := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano())
	return Sample{Wall: wall, CPU: cpu, Note: "in-process"}
}
