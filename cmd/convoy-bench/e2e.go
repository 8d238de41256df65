package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/convoy-gitops/convoy/internal/server"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

const (
	toolAgent = "convoy run (agent)"
	// benchGitHubRepo is the repository the agent's webhook acts on.
	benchGitHubRepo = "bench/config"
	// benchDebounce is the agent's debounce in these scenarios: a single
	// push, so no burst to wait for (the default, 2 s, is for merge bursts).
	benchDebounce = 100 * time.Millisecond
)

// agentProc is one `convoy run` process and its HTTP address.
type agentProc struct {
	cmd    *exec.Cmd
	addr   string
	usage  *os.File // the rusage wrapper's report
	logs   *os.File
	secret []byte
}

// startAgent runs `convoy run` (through the rusage wrapper) on in's
// repository, reached as a local git repository, with a webhook and no
// polling to speak of.
func (b *bench) startAgent(in *instance, kubeconfig string) (*agentProc, error) {
	dir := filepath.Join(b.work, "agent-"+in.w.Set)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	secret := []byte("bench-webhook-secret")
	if err := os.WriteFile(filepath.Join(dir, "secret"), secret, 0o600); err != nil {
		return nil, err
	}
	addr, err := testenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
allowInsecure: true
repo: {url: %q, branch: main, pollInterval: 1h}
kubeconfig: {file: %q}
github: {repo: %s}
webhook: {secretFile: %q}
listen: {http: %q}
workDir: %q
debounce: %s
log: {format: json, level: info}
`, "file://"+in.repo.Dir, kubeconfig, benchGitHubRepo, filepath.Join(dir, "secret"), addr, filepath.Join(dir, "work"), benchDebounce)
	cfgFile := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logs, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		logs.Close()
		return nil, err
	}
	cmd := exec.Command(rusageExe, b.convoy, "run", "--config", cfgFile)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logs.Close()
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start convoy run: %w", err)
	}
	w.Close()
	return &agentProc{cmd: cmd, addr: addr, usage: r, logs: logs, secret: secret}, nil
}

// stop sends SIGTERM to the agent (through the wrapper, which passes it
// on) and returns its resource usage.
func (a *agentProc) stop() (usage, error) {
	defer a.logs.Close()
	defer a.usage.Close()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = a.cmd.Process.Kill()
		<-done
		return usage{}, fmt.Errorf("convoy run did not stop within 60s of SIGTERM (log: %s)", a.logs.Name())
	}
	var u usage
	if err := json.NewDecoder(a.usage).Decode(&u); err != nil {
		return usage{}, fmt.Errorf("no resource usage from the rusage wrapper: %w (log: %s)", err, a.logs.Name())
	}
	return u, nil
}

// status reads the agent's /api/status.
func (a *agentProc) status(ctx context.Context) (*server.Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+"/api/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/api/status: %s", resp.Status)
	}
	var st server.Status
	return &st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitApplied polls the agent's status every 10 ms until every cluster of
// names runs revision rev healthily, and returns when it saw that.
func (a *agentProc) waitApplied(ctx context.Context, rev string, timeout time.Duration, names ...string) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		st, err := a.status(ctx)
		if err == nil {
			done := 0
			var states []string
			for _, w := range st.Waves {
				for _, c := range w.Clusters {
					for _, n := range names {
						if c.Name == n && c.Revision == rev && c.Error == "" && !strings.Contains(c.Health, ":") {
							done++
						}
					}
					states = append(states, fmt.Sprintf("%s at %.7s (%s)", c.Name, c.Revision, c.Health))
				}
			}
			if done == len(names) {
				return time.Now(), nil
			}
			last = strings.Join(states, ", ")
			if len(st.Holds) > 0 {
				last += fmt.Sprintf("; held: %s", st.Holds[0].Reason)
			}
		} else {
			last = err.Error()
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("revision %.7s not applied to %v within %s: %s (log: %s)", rev, names, timeout, last, a.logs.Name())
}

// push delivers a signed GitHub push event for rev of main.
func (a *agentProc) push(ctx context.Context, rev string, n int) error {
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": strings.Repeat("0", 40), "after": rev,
		"repository": map[string]any{"full_name": benchGitHubRepo, "name": "config", "owner": map[string]any{"login": "bench"}},
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+a.addr+"/hooks/github", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n))
	req.Header.Set("X-Hub-Signature-256", server.Sign(body, a.secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook delivery: %s", resp.Status)
	}
	return nil
}

// head is the repository's HEAD commit.
func (r *configRepo) head() (string, error) {
	out, err := exec.Command("git", "-C", r.Dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return "", fmt.Errorf("revision of %s: %w", r.Dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// annotateAll returns objs with the annotation bench.convoy.dev/push set to
// v on every object (a Deployment's pod template too, so that it rolls):
// a push that changes everything.
func annotateAll(objs []Object, v string) []Object {
	out := make([]Object, len(objs))
	for i, o := range objs {
		body := deepCopy(o.Body)
		setAnnotation(body, v)
		if o.Kind == "Deployment" {
			if tmpl, ok := body["spec"].(map[string]any)["template"].(map[string]any); ok {
				setAnnotation(tmpl, v)
			}
		}
		o.Body = body
		out[i] = o
	}
	return out
}

func setAnnotation(obj map[string]any, v string) {
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	ann, _ := meta["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
		meta["annotations"] = ann
	}
	ann["bench.convoy.dev/push"] = v
}

// endToEnd measures what a merge costs until the first wave runs it: the
// agent (`convoy run`) gets a signed push webhook, fetches the commit,
// renders, evaluates the policies, dry-runs, applies and waits until every
// object of the first wave's cluster is healthy. Each push changes every
// one of the n objects.
func (b *bench) endToEnd(ctx context.Context, n int) error {
	sc := b.scenario(fmt.Sprintf("e2e-%d", n), fmt.Sprintf("End to end: webhook push → first wave healthy, %d objects", n),
		"`convoy run` (the agent, as a process) tracks a local git repository of a fleet with two waves (c1, then c2); each sample is a commit that changes an annotation of every object (the Deployments' pod templates too, so they roll), then a signed GitHub push webhook for it. Wall time runs from the webhook's POST to the first moment the agent's /api/status shows c1 at the new revision and healthy (polled every 10 ms): fetch, render, policy, the pre-write dry-run of every changed object on both clusters, the apply and the health wait (kstatus) of c1.",
		fmt.Sprintf("The agent's debounce is set to %s (its default, 2 s, waits for the end of a burst of merges). No baseline: none of the tools compared here has a webhook-driven rollout; Flux's notification-controller receiver is the equivalent. API requests are c1's and c2's during the sample (c2's wave has started by the time c1 is seen healthy); the agent's CPU and peak RSS are given once, for the whole scenario, in the next paragraph.", benchDebounce))
	p, err := startPlanes(b.work, "c1", "c2")
	if err != nil {
		return err
	}
	defer p.Stop()
	in, err := b.newInstance(p, n, [][]string{{"c1"}, {"c2"}})
	if err != nil {
		return err
	}
	ag, err := b.startAgent(in, p.KubeconfigFile)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_, _ = ag.stop()
		}
	}()
	rev, err := in.repo.head()
	if err != nil {
		return err
	}
	if _, err := ag.waitApplied(ctx, rev, 3*time.Minute, "c1", "c2"); err != nil {
		return fmt.Errorf("%s: first rollout: %w", sc.ID, err)
	}
	sc.command(toolAgent, "convoy run --config agent.yaml; then per sample: git commit, POST /hooks/github (push), poll GET /api/status")
	for run := range b.runs {
		objs := annotateAll(in.objs, fmt.Sprint(run+1))
		if err := in.repo.setObjects(in.spec, objs); err != nil {
			return err
		}
		if err := in.repo.commit(commitMessage(fmt.Sprintf("push %d", run+1))); err != nil {
			return err
		}
		if rev, err = in.repo.head(); err != nil {
			return err
		}
		s, err := measured(ctx, p, func() (Sample, error) {
			start := time.Now()
			if err := ag.push(ctx, rev, run); err != nil {
				return Sample{}, err
			}
			at, err := ag.waitApplied(ctx, rev, 3*time.Minute, "c1")
			return Sample{Wall: at.Sub(start)}, err
		})
		if err != nil {
			return fmt.Errorf("%s: push %d: %w", sc.ID, run+1, err)
		}
		// The next push starts from a fleet at rest.
		if _, err := ag.waitApplied(ctx, rev, 3*time.Minute, "c1", "c2"); err != nil {
			return fmt.Errorf("%s: push %d, second wave: %w", sc.ID, run+1, err)
		}
		sc.add(toolAgent, s)
		b.logf("  %-48s push %d: %s", toolAgent, run+1, brief(s))
	}
	u, err := ag.stop()
	stopped = true
	if err != nil {
		return err
	}
	// The agent's CPU and peak RSS are of the whole scenario: given once.
	sc.Notes = append(sc.Notes, fmt.Sprintf("Over the whole scenario (start, first rollout, %d pushes, stop) the agent used %s of CPU and peaked at %d MiB RSS.",
		b.runs, u.CPU.Round(10*time.Millisecond), u.MaxRSS/1024))
	return nil
}

// agentRSS measures the agent's peak RSS with m clusters of n objects:
// start, roll out the first revision to every cluster, roll out a push
// that changes every object, then stop.
func (b *bench) agentRSS(ctx context.Context, n, m int) error {
	sc := b.scenario(fmt.Sprintf("agent-rss-%dx%d", m, n), fmt.Sprintf("Agent memory: %d clusters × %s objects", m, thousands(n)),
		fmt.Sprintf("`convoy run` starts on a fleet of %d clusters in two waves (c1, then the others), rolls out the first revision to all of them, then a push that changes every object; then it gets SIGTERM. Peak RSS is the agent process's ru_maxrss over all of that; wall time is from the start to the end of the second rollout; requests are every cluster's.", m))
	names := make([]string, m)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i+1)
	}
	p, err := startPlanes(b.work, names...)
	if err != nil {
		return err
	}
	defer p.Stop()
	in, err := b.newInstance(p, n, [][]string{names[:1], names[1:]})
	if err != nil {
		return err
	}
	s, err := measured(ctx, p, func() (Sample, error) {
		start := time.Now()
		ag, err := b.startAgent(in, p.KubeconfigFile)
		if err != nil {
			return Sample{}, err
		}
		rev, err := in.repo.head()
		if err == nil {
			_, err = ag.waitApplied(ctx, rev, 5*time.Minute, names...)
		}
		if err == nil {
			if err = in.repo.setObjects(in.spec, annotateAll(in.objs, "1")); err == nil {
				err = in.repo.commit(commitMessage("change every object"))
			}
		}
		if err == nil {
			rev, err = in.repo.head()
		}
		if err == nil {
			if err = ag.push(ctx, rev, 0); err == nil {
				_, err = ag.waitApplied(ctx, rev, 5*time.Minute, names...)
			}
		}
		wall := time.Since(start)
		u, serr := ag.stop()
		if err == nil {
			err = serr
		}
		return Sample{Wall: wall, CPU: u.CPU, MaxRSS: u.MaxRSS}, err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", sc.ID, err)
	}
	sc.command(toolAgent, "convoy run --config agent.yaml; a push webhook after the first rollout; SIGTERM after the second")
	sc.add(toolAgent, s)
	b.logf("  %-48s %s", toolAgent, brief(s))
	return nil
}
