package faults_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// TestAgentKilled: `convoy run` is killed with SIGKILL at five points of a
// rollout; each time a new agent process converges to the revision: every
// cluster's record at it with the exact inventory, its objects exactly the
// render (none lost, none left over), and clusters already done not
// written again. prod renders 200 more ConfigMaps, so its apply and its
// prune take long enough to be killed in the middle of.
func TestAgentKilled(t *testing.T) {
	spec := fleetSpec{name: "killed", bake: "2s"}
	s := state{version: 1, big: 200}
	e := newEnv(t, spec, s)
	staging := testenv.NewAPIProxy(t, testenv.Shared(t).Get("staging"))
	k := &killer{t: t, config: e.agentFile(kubeconfig(t, staging))}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent logs:\n%s", k.logs.String())
		}
	})
	ctx := context.Background()
	var prev string // the revision every cluster converged to last

	converge := func(rev string, s state) {
		t.Helper()
		k.run(`"msg":"rollout ended"`, nil)
		if !strings.Contains(k.last, `"result":"done"`) {
			t.Fatalf("the restarted agent ended with %s", k.last)
		}
		for _, c := range clusterNames {
			e.checkAt(c, rev, s)
		}
		prev = rev
	}
	prodItems := func(version int) (all, atVersion int) {
		var cms corev1.ConfigMapList
		if err := testenv.Shared(t).Get("prod").Client.List(ctx, &cms, client.InNamespace(spec.name)); err != nil {
			t.Fatal(err)
		}
		for _, cm := range cms.Items {
			if strings.HasPrefix(cm.Name, "item-") {
				all++
				if cm.Data["version"] == fmt.Sprint(version) {
					atVersion++
				}
			}
		}
		return all, atVersion
	}

	t.Run("before the first write", func(t *testing.T) {
		rev := e.repo.Head(t)
		before := allWrites(t)
		k.run(`"msg":"planned"`, nil)
		for _, c := range clusterNames {
			e.checkUntouched(c)
		}
		if n := wroteSince(t, before); n["staging"]+n["prod"]+n["dr"] != 0 {
			t.Errorf("ConfigMap writes before the kill: %v, want none", n)
		}
		converge(rev, s)
	})

	t.Run("mid-apply", func(t *testing.T) {
		s = state{version: 2, big: 200}
		rev := e.commit(s)
		k.run("", func() bool { _, n := prodItems(2); return n > 0 })
		_, n := prodItems(2)
		t.Logf("killed with %d of prod's 200 big ConfigMaps at the new version", n)
		if n == 200 {
			t.Errorf("killed after prod's apply, not in the middle of it")
		}
		if rec := e.record("prod"); rec.Revision != prev {
			t.Errorf("prod's record at %s when killed mid-apply, want the previous %s", source.Short(rec.Revision), source.Short(prev))
		}
		converge(rev, s)
	})

	t.Run("between waves", func(t *testing.T) {
		s = state{version: 3, big: 200}
		rev := e.commit(s)
		k.run(`"msg":"rollout bake"`, nil)
		e.checkAt("staging", rev, s)
		for _, c := range []string{"prod", "dr"} {
			e.checkAt(c, prev, state{version: 2, big: 200})
		}
		before := writes(t, "staging")
		converge(rev, s)
		if n := writes(t, "staging").Sub(before).Mutating(); n != 0 {
			t.Errorf("staging: %d ConfigMap writes after the restart, want 0 (its wave was done)", n)
		}
	})

	t.Run("mid-prune", func(t *testing.T) {
		old := s
		s = state{version: 3} // prod's 200 big ConfigMaps go
		rev := e.commit(s)
		k.run("", func() bool { n, _ := prodItems(3); return n < 200 })
		n, _ := prodItems(3)
		t.Logf("killed with %d of prod's 200 big ConfigMaps not yet pruned", n)
		if n == 0 {
			t.Errorf("killed after prod's prune, not in the middle of it")
		}
		if rec := e.record("prod"); rec.Revision != prev || len(rec.Inventory) != len(spec.want("prod", old)) {
			t.Errorf("prod's record at %s with %d objects when killed mid-prune, want the previous one (%s) with %d", source.Short(rec.Revision), len(rec.Inventory), source.Short(prev), len(spec.want("prod", old)))
		}
		converge(rev, s)
	})

	t.Run("during the record write", func(t *testing.T) {
		s = state{version: 4}
		rev := e.commit(s)
		recordPath := "/api/v1/namespaces/" + apply.StateNamespace + "/configmaps/" + apply.RecordName(spec.name)
		staging.Hold(func(r *http.Request) bool { return r.Method == http.MethodPut && r.URL.Path == recordPath })
		k.run("", func() bool { return len(staging.Held()) > 0 })
		// The write was on the wire when the agent died: it lands now.
		staging.Release()
		testenv.WaitFor(t, 10*time.Second, "staging's record written after the kill", func() bool {
			rec := e.record("staging")
			return rec.Revision == rev
		})
		e.checkAt("staging", rev, s)
		before := writes(t, "staging")
		converge(rev, s)
		if n := writes(t, "staging").Sub(before).Mutating(); n != 0 {
			t.Errorf("staging: %d ConfigMap writes after the restart, want 0 (its record says done)", n)
		}
	})
}

// agentFile writes the config of a `convoy run` for the env.
func (e *env) agentFile(kubeconfig string) string {
	e.t.Helper()
	return testenv.AgentConfig{RepoURL: e.repo.URL, Kubeconfig: kubeconfig}.File(e.t)
}

// killer runs `convoy run` processes one at a time.
type killer struct {
	t      *testing.T
	config string
	logs   strings.Builder // every process's log, shown when the test fails
	last   string          // the line the last run stopped at
	runs   int
}

// run starts `convoy run` and SIGKILLs it at the first log line holding
// line (when line is set) or as soon as poll reports true (polled every
// 10ms, when poll is set), within a minute.
func (k *killer) run(line string, poll func() bool) {
	t := k.t
	t.Helper()
	k.runs++
	cmd := exec.Command(testenv.Convoy(t), "run", "--config", k.config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill := func() { once.Do(func() { _ = cmd.Process.Signal(syscall.SIGKILL) }) }
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		kill()
		for range lines { // drain until the pipe closes
		}
		_ = cmd.Wait()
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("agent run %d exited before the kill point; logs:\n%s", k.runs, k.logs.String())
			}
			fmt.Fprintf(&k.logs, "run %d: %s\n", k.runs, l)
			if !json.Valid([]byte(l)) {
				t.Errorf("log line is not JSON: %s", l)
			}
			if line != "" && strings.Contains(l, line) {
				kill()
				k.last = l
				return
			}
		case <-tick.C:
			if poll != nil && poll() {
				kill()
				k.last = "(polled)"
				return
			}
		case <-deadline:
			t.Fatalf("agent run %d: no kill point within a minute; logs:\n%s", k.runs, k.logs.String())
		}
	}
}
