package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Scenario is one table of BENCHMARKS.md: the samples of every tool.
type Scenario struct {
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	Unit     string            `json:"unit,omitempty"` // what one sample is, when not one run
	Notes    []string          `json:"notes,omitempty"`
	Skipped  string            `json:"skipped,omitempty"`
	Rows     []*Row            `json:"rows"`
	Commands map[string]string `json:"commands,omitempty"` // tool → an example command line
}

// Row is one tool's samples in a scenario.
type Row struct {
	Tool    string   `json:"tool"`
	Samples []Sample `json:"samples"`
}

func (sc *Scenario) add(tool string, s Sample) {
	for _, r := range sc.Rows {
		if r.Tool == tool {
			r.Samples = append(r.Samples, s)
			return
		}
	}
	sc.Rows = append(sc.Rows, &Row{Tool: tool, Samples: []Sample{s}})
}

func (sc *Scenario) command(tool, cmd string) {
	if sc.Commands == nil {
		sc.Commands = map[string]string{}
	}
	if _, ok := sc.Commands[tool]; !ok {
		sc.Commands[tool] = cmd
	}
}

func (b *bench) scenario(id, title string, notes ...string) *Scenario {
	sc := &Scenario{ID: id, Title: title, Notes: notes}
	b.results.Scenarios = append(b.results.Scenarios, sc)
	b.logf("scenario %s: %s", id, title)
	return sc
}

// nextSet names a fresh workload instance: namespaces, CRD group, fleet.
func (b *bench) nextSet() string {
	b.sets++
	return fmt.Sprintf("w%03d", b.sets)
}

// instance is one tool's workload in one run: its objects written into a
// config repository whose only cluster (or clusters) are p's planes.
type instance struct {
	w       Workload
	objs    []Object
	repo    *configRepo
	spec    fleetSpec
	targets []target
}

func (b *bench) newInstance(p *planes, n int, waves [][]string) (*instance, error) {
	set := b.nextSet()
	w := Workload{Seed: b.seed, Objects: n, Set: set, ZeroReplicas: true}
	in := &instance{w: w, objs: w.Generate(), spec: fleetSpec{Name: "bench-" + set, Waves: waves}}
	dir := filepath.Join(b.work, set)
	var err error
	if in.repo, err = newConfigRepo(dir, in.spec, in.objs); err != nil {
		return nil, err
	}
	for _, wave := range waves {
		for _, c := range wave {
			in.targets = append(in.targets, target{dir: filepath.Join(dir, "clusters", c), kubeconfig: p.KubeconfigFile,
				context: c, set: set, crd: w.CRDName(), inventory: filepath.Join(dir, "inventory-"+c)})
		}
	}
	return in, nil
}

// applyPipelines is what tool runs to apply in (to every cluster of it).
func (b *bench) applyPipelines(tool string, in *instance, cold, prune bool) [][]step {
	switch tool {
	case toolConvoy:
		return [][]step{b.convoyApply(in.repo.Dir, in.targets[0].kubeconfig)}
	case toolConvoyDrift:
		return [][]step{b.convoyDrift(in.repo.Dir, in.targets[0].kubeconfig)}
	}
	var out [][]step
	for _, t := range in.targets { // one cluster after the other
		switch tool {
		case toolKubectl:
			out = append(out, b.kubectlApply(t, cold, prune)...)
		case toolFluxDefault:
			out = append(out, b.fluxApply(t, false))
		case toolFluxUnthrottled:
			out = append(out, b.fluxApply(t, true))
		}
	}
	return out
}

// runsFor is the number of runs of a scenario of n objects in all.
func (b *bench) runsFor(n int) int {
	if n >= 1000 {
		return b.bigRuns
	}
	return b.runs
}

// rotate returns tools starting at round: A B C, B C A, … so that no tool
// always runs first on a plane or right after the same neighbour.
func rotate(tools []string, round int) []string {
	out := make([]string, len(tools))
	for i := range tools {
		out[i] = tools[(i+round)%len(tools)]
	}
	return out
}

// coldAndNoop measures a cold apply of n objects by each tool (runsFor(n)
// runs), and after each tool's first cold apply, `reconciles` no-op
// reconciles of the unchanged objects by the same tool, each a sample.
func (b *bench) coldAndNoop(ctx context.Context, n, reconciles int) error {
	cold := b.scenario(fmt.Sprintf("cold-%d", n), fmt.Sprintf("Cold apply, %s objects, one cluster", thousands(n)),
		"convoy's time includes rendering, policy, a server-side dry-run of every object before any write, and waiting until every object is healthy (kstatus); the baselines return once the API server accepted the objects.")
	noop := b.scenario(fmt.Sprintf("noop-%d", n), fmt.Sprintf("No-op reconcile, %s objects, one cluster", thousands(n)),
		fmt.Sprintf("Each sample is one reconcile of objects that are already applied and unchanged: %d per tool, right after its first cold apply of the table above.", reconciles),
		"`convoy` is `convoy apply` again: the cluster's record shows the same render, so nothing is sent but the record read. `convoy drift check` is a process doing what the agent does on its reconcile schedule, from scratch: render + policy, then one metadata LIST per kind (across namespaces), re-applying only what drifted (nothing here). `convoy agent reconcile` is the reconcile half of that same process, timed by itself: the agent keeps the plan of the revision it rolled out, so on its schedule it pays only this (rollout.Runner.Reconcile); its requests are the drift check's, since planning sends none.")
	noop.Unit = "reconcile"
	p, err := startPlanes(b.work, "c1")
	if err != nil {
		return err
	}
	defer p.Stop()
	tools := []string{toolConvoy, toolKubectl, toolFluxDefault, toolFluxUnthrottled}
	for round := range b.runsFor(n) {
		for _, tool := range rotate(tools, round) {
			if err := ctx.Err(); err != nil {
				return err
			}
			in, err := b.newInstance(p, n, [][]string{{"c1"}})
			if err != nil {
				return err
			}
			pl := b.applyPipelines(tool, in, true, false)
			cold.command(tool, describe(pl...))
			s, err := b.runTool(ctx, p, pl...)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", cold.ID, tool, err)
			}
			cold.add(tool, s)
			b.logf("  %-48s run %d: %s", tool, round+1, brief(s))
			if round > 0 {
				continue // the no-op reconciles follow each tool's first apply
			}
			noopTools := []string{tool}
			if tool == toolConvoy {
				noopTools = append(noopTools, toolConvoyDrift)
			}
			for _, nt := range noopTools {
				pl := b.applyPipelines(nt, in, false, false)
				noop.command(nt, describe(pl...))
				for range reconciles {
					s, err := b.runTool(ctx, p, pl...)
					if err != nil {
						return fmt.Errorf("%s: %s: %w", noop.ID, nt, err)
					}
					noop.add(nt, s)
					if d := s.Phases["reconcile"]; nt == toolConvoyDrift && d > 0 {
						// What the agent pays: it keeps the plan of the
						// revision it rolled out, and every request is
						// the reconcile's (planning sends none).
						noop.add(toolAgentReconcile, Sample{Wall: d, Requests: s.Requests})
					}
				}
				b.logf("  %-48s no-op: %s", nt, brief(noop.rowOf(nt).Samples[len(noop.rowOf(nt).Samples)-1]))
			}
		}
	}
	return nil
}

func (sc *Scenario) rowOf(tool string) *Row {
	for _, r := range sc.Rows {
		if r.Tool == tool {
			return r
		}
	}
	return nil
}

// smallChange applies n objects, then changes 1 % of them and removes
// another 1 %, and measures the second apply.
func (b *bench) smallChange(ctx context.Context, n int) error {
	changed := max(1, n/100)
	sc := b.scenario(fmt.Sprintf("change-%d", n), fmt.Sprintf("Small change: %d of %s objects modified and %d removed", changed, thousands(n), changed),
		fmt.Sprintf("Target: requests ≤ 3 × %d changed objects + 10 = %d.", 2*changed, 3*2*changed+10),
		"Removal: convoy prunes from its inventory record; kubectl applies as an ApplySet (`KUBECTL_APPLYSET=true --applyset=applysets.bench.convoy.dev/NAME --prune`, from the first apply on; the parent is a cluster-scoped custom object made beforehand, because a Secret or ConfigMap parent cannot hold members in several namespaces), its only prune that works with server-side apply; fluxapply deletes what its previous inventory held and the new render does not, as kustomize-controller's garbage collection does.",
		"Flux ssa runs unthrottled only: its client limits are per resource type in controller-runtime's client, so at its defaults it sends the same requests (see the cold apply tables).")
	p, err := startPlanes(b.work, "c1")
	if err != nil {
		return err
	}
	defer p.Stop()
	tools := []string{toolConvoy, toolKubectl, toolFluxUnthrottled}
	for round := range b.runsFor(n) {
		for _, tool := range rotate(tools, round) {
			if err := ctx.Err(); err != nil {
				return err
			}
			in, err := b.newInstance(p, n, [][]string{{"c1"}})
			if err != nil {
				return err
			}
			if tool == toolKubectl {
				setup, err := b.applySetSetup(in.targets[0], in.repo.Dir)
				if err != nil {
					return err
				}
				if _, _, err := runSteps(ctx, nil, setup...); err != nil {
					return fmt.Errorf("%s: %s: ApplySet parent: %w", sc.ID, tool, err)
				}
			}
			if _, _, err := runSteps(ctx, nil, b.applyPipelines(tool, in, true, tool == toolKubectl)...); err != nil {
				return fmt.Errorf("%s: %s: first apply: %w", sc.ID, tool, err)
			}
			objs := mutate(in.objs, changed)
			if err := in.repo.setObjects(in.spec, objs); err != nil {
				return err
			}
			if err := in.repo.commit(commitMessage("small change")); err != nil {
				return err
			}
			pl := b.applyPipelines(tool, in, false, true)
			sc.command(tool, describe(pl...))
			s, err := b.runTool(ctx, p, pl...)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", sc.ID, tool, err)
			}
			sc.add(tool, s)
			b.logf("  %-48s run %d: %s", tool, round+1, brief(s))
		}
	}
	return nil
}

// mutate returns objs with k app ConfigMaps modified and k objects of whole
// apps (ServiceAccount, ConfigMap, Service, Deployment, HPA) removed.
func mutate(objs []Object, k int) []Object {
	var apps []string // Deployment names, in order
	for _, o := range objs {
		if o.Kind == "Deployment" {
			apps = append(apps, o.Namespace+"/"+o.Name)
		}
	}
	remove := map[string]bool{}
	for i := 0; i < len(apps) && len(remove)*5 < k; i++ {
		remove[apps[i]] = true
	}
	modify := map[string]bool{}
	for i := len(apps) - 1; i >= 0 && len(modify) < k; i-- {
		modify[apps[i]+"-config"] = true
	}
	removed := 0
	var out []Object
	for _, o := range objs {
		app := o.Namespace + "/" + strings.TrimSuffix(o.Name, "-config")
		if o.Namespace != "" && remove[app] && o.Kind != "Widget" && removed < k {
			removed++
			continue
		}
		if o.Kind == "ConfigMap" && modify[o.Namespace+"/"+o.Name] {
			body := deepCopy(o.Body)
			body["data"].(map[string]any)["LOG_LEVEL"] = "trace"
			o.Body = body
		}
		out = append(out, o)
	}
	return out
}

func deepCopy(m map[string]any) map[string]any {
	data, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out
}

// fanOut applies n objects to each of m clusters: convoy in waves (the
// first cluster, then the others in parallel), Flux one cluster after the
// other.
func (b *bench) fanOut(ctx context.Context, n, m int) error {
	sc := b.scenario(fmt.Sprintf("fanout-%dx%d", n, m), fmt.Sprintf("Fan-out: %d objects × %d cluster(s), in waves", n, m),
		"convoy: one `convoy apply` of a fleet whose first wave is the first cluster and whose second wave is the others, each wave waited for until healthy. Flux ssa: one `kustomize build | fluxapply` per cluster, one after the other, unthrottled (Flux's best case; no health wait).",
		"Requests and CPU are summed over every cluster and client process.")
	names := make([]string, m)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i+1)
	}
	waves := [][]string{names[:1]}
	if m > 1 {
		waves = append(waves, names[1:])
	}
	p, err := startPlanes(b.work, names...)
	if err != nil {
		return err
	}
	defer p.Stop()
	tools := []string{toolConvoy, toolFluxUnthrottled}
	for round := range b.runsFor(n * m) {
		for _, tool := range rotate(tools, round) {
			if err := ctx.Err(); err != nil {
				return err
			}
			in, err := b.newInstance(p, n, waves)
			if err != nil {
				return err
			}
			pl := b.applyPipelines(tool, in, true, false)
			sc.command(tool, describe(pl...))
			s, err := b.runTool(ctx, p, pl...)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", sc.ID, tool, err)
			}
			sc.add(tool, s)
			b.logf("  %-48s run %d: %s", tool, round+1, brief(s))
		}
	}
	return nil
}

var topLevelKind = regexp.MustCompile(`(?m)^kind: `)

func thousands(n int) string {
	s := fmt.Sprint(n)
	if n >= 1000 {
		s = s[:len(s)-3] + "," + s[len(s)-3:]
	}
	return s
}

func brief(s Sample) string {
	return fmt.Sprintf("%s, %d requests %v, cpu %s, rss %d MiB", s.Wall.Round(time.Millisecond), s.Requests.Total(),
		sortedCounts(s.Requests), s.CPU.Round(time.Millisecond), s.MaxRSS/1024)
}

func sortedCounts(r map[string]int) string {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, r[k]))
	}
	return strings.Join(parts, ", ")
}
