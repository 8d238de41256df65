package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// Machine is what the numbers were measured on.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemTotal string `json:"mem_total"`
	LoadAvg  string `json:"load_avg_at_start"` // others may share the machine
	OS       string `json:"os"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	return m
}

func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// versions asks every tool for its version.
func (b *bench) versions() map[string]string {
	first := func(bin string, args ...string) string {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil && len(out) == 0 {
			return "unknown (" + err.Error() + ")"
		}
		return strings.TrimSpace(strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0])
	}
	mod := func(bin, path string) string {
		out, err := exec.Command("go", "version", "-m", bin).Output()
		if err != nil {
			return "unknown"
		}
		lines := strings.Split(string(out), "\n")
		for i, line := range lines {
			f := strings.Fields(line)
			if len(f) >= 3 && (f[0] == "dep" || f[0] == "mod") && f[1] == path {
				// A replaced module is followed by "=> PATH VERSION".
				if i+1 < len(lines) {
					if r := strings.Fields(lines[i+1]); len(r) >= 2 && r[0] == "=>" {
						return f[2] + " replaced by " + r[1]
					}
				}
				return f[2]
			}
		}
		return "unknown"
	}
	bin := filepath.Dir(b.kubectl)
	return map[string]string{
		"go":                         runtime.Version(),
		"convoy":                     first(b.convoy, "version"),
		"kustomize":                  mod(b.kustomize, "sigs.k8s.io/kustomize/kustomize/v5") + " (kustomize/api " + mod(b.kustomize, "sigs.k8s.io/kustomize/api") + ")",
		"conftest":                   mod(b.conftest, "github.com/open-policy-agent/conftest") + " (opa " + mod(b.conftest, "github.com/open-policy-agent/opa") + ")",
		"fluxapply (fluxcd/pkg/ssa)": mod(b.fluxapply, "github.com/fluxcd/pkg/ssa") + " (client-go " + mod(b.fluxapply, "k8s.io/client-go") + ")",
		"convoy's fluxcd/pkg/ssa":    mod(b.convoy, "github.com/fluxcd/pkg/ssa"),
		"convoy's opa":               mod(b.convoy, "github.com/open-policy-agent/opa"),
		"convoy's kustomize/api":     mod(b.convoy, "sigs.k8s.io/kustomize/api"),
		"kube-apiserver, kube-controller-manager, kubectl (k8s.io/kubernetes)": mod(filepath.Join(bin, "kube-apiserver"), "k8s.io/kubernetes"),
		"etcd": first(filepath.Join(bin, "etcd"), "--version"),
	}
}

// stats of one row.
type stats struct {
	n                      int
	wall, wallMin, wallMax time.Duration
	cpu                    time.Duration
	rss                    int64
	requests               float64
	byVerb                 map[string]float64
	hasRequests            bool
}

func statsOf(r *Row) stats {
	s := stats{n: len(r.Samples), byVerb: map[string]float64{}}
	if s.n == 0 {
		return s
	}
	var walls, cpus []time.Duration
	var rss []int64
	var totals []float64
	verbs := map[string][]float64{}
	for _, x := range r.Samples {
		walls = append(walls, x.Wall)
		cpus = append(cpus, x.CPU)
		rss = append(rss, x.MaxRSS)
		totals = append(totals, float64(x.Requests.Total()))
		if x.Requests != nil {
			s.hasRequests = true
		}
		for v := range x.Requests {
			verbs[v] = nil
		}
	}
	for v := range verbs {
		for _, x := range r.Samples {
			verbs[v] = append(verbs[v], float64(x.Requests[v]))
		}
		s.byVerb[v] = median(verbs[v])
	}
	s.wall, s.cpu = median(walls), median(cpus)
	s.wallMin, s.wallMax = slices.Min(walls), slices.Max(walls)
	s.rss = median(rss)
	s.requests = median(totals)
	return s
}

type number interface{ ~int | ~int64 | ~float64 }

// median of xs; the mean of the two middle values when even.
func median[T number](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
}

func num(f float64) string {
	if f == float64(int64(f)) {
		return fmt.Sprint(int64(f))
	}
	return fmt.Sprintf("%.1f", f)
}

// report renders BENCHMARKS.md.
func report(res *Results, failed []string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# convoy benchmarks\n\n")
	w("Measured by `%s` in one run on %s (%s). Written by cmd/convoy-bench; the raw samples are in bench-results.json. ",
		res.Command, res.Started.Format("2006-01-02 15:04 UTC"), res.Duration.Round(time.Second))
	if res.Quick {
		w("**QUICK run** (reduced sizes and runs, for CI smoke use; not the full benchmark).")
	}
	w("\n\n## Machine\n\n")
	w("- %d CPUs: %s\n- memory: %s\n- load average when the run started: %s (other work may share this machine; the numbers include its noise)\n- %s\n\n",
		res.Machine.CPUs, res.Machine.CPUModel, res.Machine.MemTotal, res.Machine.LoadAvg, res.Machine.OS)
	w("## Versions\n\n| tool | version |\n| --- | --- |\n")
	keys := make([]string, 0, len(res.Versions))
	for k := range res.Versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w("| %s | %s |\n", k, strings.ReplaceAll(res.Versions[k], "|", "/"))
	}
	w("\n## Method\n\n")
	w("- Each tool's run is alternated with the others' (A B C, B C A, …): %d runs per tool, %d for the scenarios of 1,000 objects or more in all; the samples column says how many each figure is the median of (in the no-op tables every reconcile is a sample). Tables give the median and the min–max of wall time, and the medians of the rest.\n", res.Runs, res.BigRuns)
	w("- Clusters: real kube-apiserver + etcd (bin/, started by internal/testenv), fresh for each scenario and size; each run applies a fresh workload instance (its own namespaces, CRD group, fleet name and record) on it, so runs do not see each other's objects, but the API server's store grows over the runs of a table, for every tool alike thanks to the rotation. Starting a plane per run would cost ≈10 s each on this machine.\n")
	w("- Every plane runs a kube-controller-manager with only the deployment and replicaset controllers: convoy waits for health (kstatus), and a Deployment is Available only once a controller says so. The generated Deployments are scaled to 0 so that no pod, scheduler or node is needed; their HPAs (minReplicas 1) do not act on a target at zero, and no HPA controller runs.\n")
	w("- **API requests** are the difference of the API server's `apiserver_request_total` before and after a run, by verb, dry-runs apart. Left out: subresources (the controllers' status writes), the resources only the planes' own components touch (%s) and the deployment controller's UPDATEs of Deployments (no client measured sends one). Non-resource requests are left out too, discovery (`/api`, `/apis`) among them, which the metric records with an empty resource: each tool sends a few per process (kubectl fewer, from its disk cache), and they are in none of the figures. A little noise remains: the API server's own periodic reads of its `kubernetes` Service and namespaces (a few per 10 s).\n", strings.Join(noisy, ", "))
	w("- **CPU** is user + system time of the client processes (getrusage of each child, summed over a pipeline such as `kustomize build | kubectl apply`), **peak RSS** the largest child's ru_maxrss. convoy runs as the `bin/convoy` binary, like the baselines. The API server's own CPU is not in these figures: it shares the 2 cores with the client, so wall times include it.\n")
	w("- Workload (seed %d): per app a Deployment, Service, ConfigMap, ServiceAccount and HorizontalPodAutoscaler; a Namespace per 100 objects; one CustomResourceDefinition and a custom resource per 50 objects; ConfigMaps for the remainder, so a table's object count is exact.\n\n", res.Seed)

	for _, sc := range res.Scenarios {
		w("## %s\n\n", sc.Title)
		if sc.Skipped != "" {
			w("SKIPPED: %s\n\n", sc.Skipped)
			continue
		}
		for _, n := range sc.Notes {
			w("%s\n\n", n)
		}
		var convoy *stats
		for _, r := range sc.Rows {
			if strings.HasPrefix(r.Tool, "convoy") {
				s := statsOf(r)
				convoy = &s
				break
			}
		}
		unit := "run"
		if sc.Unit != "" {
			unit = sc.Unit
		}
		w("| tool | samples | wall (median, min–max) | convoy ÷ tool | API requests per %s (median, by verb) | client CPU | peak RSS |\n", unit)
		w("| --- | ---: | --- | ---: | --- | ---: | ---: |\n")
		for _, r := range sc.Rows {
			s := statsOf(r)
			ratio := "—"
			if convoy != nil && !strings.HasPrefix(r.Tool, "convoy") && s.wall > 0 {
				x := float64(convoy.wall) / float64(s.wall)
				ratio = fmt.Sprintf("%.2f (%s)", x, faster(x))
			}
			req := "—"
			if s.hasRequests {
				var parts []string
				verbs := make([]string, 0, len(s.byVerb))
				for v := range s.byVerb {
					verbs = append(verbs, v)
				}
				sort.Strings(verbs)
				for _, v := range verbs {
					if s.byVerb[v] != 0 {
						parts = append(parts, fmt.Sprintf("%s %s", v, num(s.byVerb[v])))
					}
				}
				req = fmt.Sprintf("**%s**: %s", num(s.requests), strings.Join(parts, ", "))
			}
			rss := "—"
			if s.rss > 0 {
				rss = fmt.Sprintf("%d MiB", s.rss/1024)
			}
			w("| %s | %d | %s (%s–%s) | %s | %s | %s | %s |\n", strings.ReplaceAll(r.Tool, "|", "\\|"), s.n, dur(s.wall), dur(s.wallMin), dur(s.wallMax), ratio, req, dur(s.cpu), rss)
		}
		for _, r := range sc.Rows {
			phases := map[string][]time.Duration{}
			for _, x := range r.Samples {
				for k, v := range x.Phases {
					phases[k] = append(phases[k], v)
				}
			}
			if len(phases) == 0 {
				continue
			}
			names := make([]string, 0, len(phases))
			for k := range phases {
				names = append(names, k)
			}
			sort.Strings(names)
			var parts []string
			for _, k := range names {
				parts = append(parts, fmt.Sprintf("%s %s", k, dur(median(phases[k]))))
			}
			w("\n%s, as it times itself (medians): %s; the rest of its wall time is process start, loading the repository and connecting.\n", r.Tool, strings.Join(parts, ", "))
		}
		if len(sc.Commands) > 0 {
			w("\nCommands (paths shortened; one run):\n\n")
			tools := make([]string, 0, len(sc.Commands))
			for t := range sc.Commands {
				tools = append(tools, t)
			}
			sort.Strings(tools)
			for _, t := range tools {
				w("- %s: `%s`\n", t, shorten(sc.Commands[t]))
			}
		}
		w("\n")
	}
	b.WriteString(targets(res))
	if len(failed) > 0 {
		w("\n## Failed scenarios\n\n")
		for _, f := range failed {
			w("- %s\n", strings.ReplaceAll(f, "\n", " "))
		}
	}
	return b.String()
}

func faster(x float64) string {
	if x <= 1 {
		return fmt.Sprintf("convoy %.1f× faster", 1/x)
	}
	return fmt.Sprintf("convoy %.1f× slower", x)
}

var workPath = regexp.MustCompile(`\S*/convoy-bench-[0-9]+`)

// shorten replaces the temporary work directory by $WORK in a command line.
func shorten(cmd string) string {
	return workPath.ReplaceAllString(cmd, "$$WORK")
}
