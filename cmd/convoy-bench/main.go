// Command convoy-bench measures convoy against the tools its users would
// otherwise run (kubectl, the kustomize CLI, Flux's ssa apply path,
// conftest) on the same machine in one run, and writes BENCHMARKS.md and
// the raw samples as JSON. `make bench` builds everything and runs it;
// `make bench QUICK=1` runs a reduced set.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/convoy-gitops/convoy/internal/testenv"
)

// Results is everything one run measured: bench-results.json.
type Results struct {
	Command   string            `json:"command"`
	Quick     bool              `json:"quick"`
	Runs      int               `json:"runs"`
	BigRuns   int               `json:"runs_1000_plus"` // runs of the scenarios of 1,000 objects or more
	Seed      uint64            `json:"seed"`
	Started   time.Time         `json:"started"`
	Duration  time.Duration     `json:"duration_ns"`
	Machine   Machine           `json:"machine"`
	Versions  map[string]string `json:"versions"`
	Scenarios []*Scenario       `json:"scenarios"`
}

type bench struct {
	root, work                                            string
	convoy, kubectl, kustomize, conftest, fluxapply, self string
	changeFile                                            string
	runs                                                  int
	bigRuns                                               int // runs of the scenarios of 1,000 objects or more
	seed                                                  uint64
	sets                                                  int
	results                                               *Results
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "drift" {
		if err := childDrift(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "convoy-bench drift:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "convoy-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	quick := flag.Bool("quick", false, "a reduced set for CI smoke use (3 runs, smaller sizes)")
	runs := flag.Int("runs", 0, "runs per tool and scenario (default 5, 3 with -quick)")
	seed := flag.Uint64("seed", 1, "workload generator seed")
	only := flag.String("only", "", "comma-separated scenario groups to run (cold, change, fanout, render, policy, e2e, agent; e2e includes agent); all when empty")
	out := flag.String("out", "BENCHMARKS.md", "the report")
	jsonOut := flag.String("json", "bench-results.json", "the raw samples")
	command := flag.String("command", "", "the command line to print in the report (default: this program's)")
	keep := flag.Bool("keep", false, "keep the work directory (generated repos, inputs, control plane logs) and print where it is")
	sizes := flag.String("sizes", "", "comma-separated object counts of the cold/no-op scenarios, instead of the defaults")
	reportOnly := flag.String("report-from", "", "write the report from this results JSON (of an earlier run) and exit")
	binDir := flag.String("bin", "bin", "where convoy, kubectl and bench/{kustomize,conftest,fluxapply} are")
	flag.Parse()

	if *reportOnly != "" {
		data, err := os.ReadFile(*reportOnly)
		if err != nil {
			return err
		}
		var res Results
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("%s: %w", *reportOnly, err)
		}
		return os.WriteFile(*out, []byte(report(&res, nil)), 0o644)
	}
	bin, _ := filepath.Abs(*binDir)
	root, err := testenv.ModuleRoot()
	if err != nil {
		root = filepath.Dir(bin) // bin/ is at the module root
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		os.Setenv("KUBEBUILDER_ASSETS", bin) // the control planes' binaries, wherever this runs from
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "convoy-bench-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "convoy-bench: work directory", work)
		if stepLog, err = os.Create(filepath.Join(work, "steps.log")); err != nil {
			return err
		}
	} else {
		defer os.RemoveAll(work)
	}
	b := &bench{root: root, work: work, self: self, seed: *seed, runs: *runs,
		convoy: filepath.Join(bin, "convoy"), kubectl: filepath.Join(bin, "kubectl"),
		kustomize: filepath.Join(bin, "bench", "kustomize"), conftest: filepath.Join(bin, "bench", "conftest"),
		fluxapply: filepath.Join(bin, "bench", "fluxapply")}
	rusageExe = filepath.Join(bin, "bench", "rusage")
	if b.runs == 0 {
		b.runs = 5
		if *quick {
			b.runs = 3
		}
	}
	b.bigRuns = b.runs
	if *quick {
		b.bigRuns = 1 // the QUICK set's 1,000-object scenarios: a smoke run, not a measurement
	}
	for _, p := range []string{b.convoy, b.kubectl, b.kustomize, b.conftest, b.fluxapply, rusageExe} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s missing: run `make bench` (it builds it)", p)
		}
	}
	b.changeFile = filepath.Join(work, "change.json")
	if err := os.WriteFile(b.changeFile, []byte(changeJSON), 0o644); err != nil {
		return err
	}
	cmdLine := *command
	if cmdLine == "" {
		cmdLine = strings.Join(os.Args, " ")
	}
	b.results = &Results{Command: cmdLine, Quick: *quick, Runs: b.runs, BigRuns: b.bigRuns, Seed: b.seed, Started: time.Now().UTC(),
		Machine: machine(), Versions: b.versions()}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	want := func(group string) bool {
		if *only == "" {
			return true
		}
		for _, g := range strings.Split(*only, ",") {
			if strings.TrimSpace(g) == group {
				return true
			}
		}
		return false
	}
	coldSizes, reconciles := []int{100, 1000, 5000}, 10
	fanout, renderObjects := []int{1, 3, 5}, 250
	if *quick {
		coldSizes, reconciles, fanout, renderObjects = []int{100, 1000}, 1, []int{1, 3}, 100
	}
	if *sizes != "" {
		coldSizes = nil
		for _, f := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("-sizes %q: %w", *sizes, err)
			}
			coldSizes = append(coldSizes, n)
		}
	}
	var steps []func() error
	if want("policy") {
		steps = append(steps, func() error { return b.policyEval(ctx, 5000) })
	}
	if want("render") {
		steps = append(steps, func() error { return b.render(ctx, 20, renderObjects) })
	}
	if want("cold") {
		for _, n := range coldSizes {
			steps = append(steps, func() error { return b.coldAndNoop(ctx, n, reconcilesFor(n, reconciles)) })
		}
	}
	if want("change") {
		steps = append(steps, func() error { return b.smallChange(ctx, 1000) })
	}
	if want("fanout") {
		for _, m := range fanout {
			steps = append(steps, func() error { return b.fanOut(ctx, 500, m) })
		}
	}
	if want("e2e") {
		steps = append(steps, func() error { return b.endToEnd(ctx, 100) })
	}
	if want("e2e") || want("agent") {
		steps = append(steps, func() error { return b.agentRSS(ctx, 1000, 3) })
	}
	var failed []string
	for _, step := range steps {
		if err := step(); err != nil {
			// One broken scenario must not cost the others: report it.
			b.logf("FAILED: %v", err)
			failed = append(failed, err.Error())
			if ctx.Err() != nil {
				break
			}
		}
	}
	b.results.Duration = time.Since(b.results.Started)
	data, err := json.MarshalIndent(b.results, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(*out, []byte(report(b.results, failed)), 0o644); err != nil {
		return err
	}
	b.logf("wrote %s and %s in %s", *out, *jsonOut, b.results.Duration.Round(time.Second))
	if len(failed) > 0 {
		return fmt.Errorf("%d scenario(s) failed:\n%s", len(failed), strings.Join(failed, "\n"))
	}
	return nil
}

// reconcilesFor is one no-op reconcile per tool at 5,000 objects: each costs
// the baselines over a minute of upstream kustomize build (quadratic in the
// objects; convoy's patched copy is not, see internal/third_party), and its
// request count, the figure the target is about, does not vary from one
// reconcile to the next. Ten would put `make bench` past two hours.
func reconcilesFor(n, reconciles int) int {
	if n >= 5000 {
		return min(reconciles, 1)
	}
	return reconciles
}
