package commands

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/render"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// The bad-input corpus is fixtures/invalid: one directory per case, each
// with one expectation file naming the lines stderr (or, for the agent,
// its log and readiness) must contain:
//
//   - expect.txt: a config repository that fails to load or render as it is
//     committed; convoy render (TestRenderInvalidFixtures) and convoy apply
//     both reject it.
//   - expect-apply.txt: a config repository that renders, or needs a file
//     or symbolic link the test makes (corpusSetups); convoy apply rejects it.
//   - expect-run.txt: an agent config, config.yaml; convoy run rejects it.

// corpusSetups prepare a case's work tree before convoy runs on it: what
// cannot be committed (megabytes, links that point outside the checkout).
var corpusSetups = map[string]func(t *testing.T, work string){
	"render-huge-file": func(t *testing.T, work string) {
		head := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\n  namespace: default\ndata:\n  blob: "
		corpusWrite(t, filepath.Join(work, "clusters/y/huge.yaml"), head+strings.Repeat("a", render.MaxFileSize)+"\n")
	},
	"render-symlink-etc-base": func(t *testing.T, work string) {
		corpusSymlink(t, "/etc", filepath.Join(work, "clusters/y/etc"))
	},
	// The change sets its own approvals to zero: it is judged by its base's
	// rules (one approval for normal) and flagged as a governance edit,
	// which needs two.
	"governance-loosened-by-the-change": func(t *testing.T, work string) {
		corpusWrite(t, filepath.Join(work, "fleet.yaml"), strings.Replace(corpusRead(t, filepath.Join(work, "fleet.yaml")), "approvals: {normal: 1}", "approvals: {normal: 0}", 1))
	},
	// A policy that is a link to /dev/zero: an unbounded read, refused.
	"policy-symlink": func(t *testing.T, work string) {
		corpusSymlink(t, "/dev/zero", filepath.Join(work, "policies/zero.rego"))
	},
	"render-symlink-relative-escape": func(t *testing.T, work string) {
		// A valid object just outside the checkout: refused for where it
		// is, not for what it holds.
		corpusWrite(t, filepath.Join(filepath.Dir(work), "outside.yaml"),
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: outside\n  namespace: default\n")
		corpusSymlink(t, "../../..", filepath.Join(work, "clusters/y/up"))
	},
}

// corpusExit is each case's exit code when it is not ExitError.
var corpusExit = map[string]int{
	// An evaluation that times out is a deny (fail closed).
	"policy-timeout": ExitDeny,
	// So is a policy that does not compile, naming its file and line,
	// one that extends a built-in package or calls a network builtin.
	"policy-syntax-error":    ExitDeny,
	"policy-extends-builtin": ExitDeny,
	"policy-http-send":       ExitDeny,
	// A change may not write convoy's own namespace or loosen its own rules.
	"protected-record-configmap":        ExitDeny,
	"governance-loosened-by-the-change": ExitDeny,
	// The agent does not exit on a commit it refuses: it keeps running
	// without a good revision, unready, until the test stops it.
	"agent-unsigned-commit": ExitOK,
}

// TestInvalidCorpus runs convoy apply (or convoy run, for agent configs) on
// every case of fixtures/invalid against two real API servers, the
// contexts x and y of the fixtures' fleets: each case must end with its
// exit code, name the file or field at fault, and make no mutating request
// on either cluster. A valid repository applied last proves that the
// request counts see writes.
func TestInvalidCorpus(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	corpus := filepath.Join(root, "fixtures/invalid")
	entries, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) < 30 {
		t.Fatalf("fixtures/invalid has %d cases, want at least 30", len(dirs))
	}
	clusters := testenv.Start(t, testenv.Spec{Name: "x"}, testenv.Spec{Name: "y"})
	change := filepath.Join(root, "fixtures/changes/normal-approved.json")

	before := corpusSettled(t, clusters)
	for _, name := range dirs {
		ok := t.Run(name, func(t *testing.T) {
			dir := filepath.Join(corpus, name)
			command, want := corpusExpectation(t, dir)
			var code int
			var out, errOut string
			switch command {
			case "apply":
				work, _ := testenv.FixtureRepo(t, dir)
				if setup := corpusSetups[name]; setup != nil {
					setup(t, work)
					testenv.CommitWorkTree(t, work, "what cannot be a fixture file")
				}
				code, out, errOut = run(t, "apply", "--repo", work, "--kubeconfig", clusters.KubeconfigFile,
					"--change", change, "--now", night)
			case "run":
				code, errOut = corpusRunAgent(t, dir, clusters.KubeconfigFile)
			}
			wantCode := ExitError
			if c, ok := corpusExit[name]; ok {
				wantCode = c
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, out, errOut)
			}
			for _, w := range want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(errOut, "goroutine ") || strings.Contains(errOut, "panic:") {
				t.Errorf("stderr holds a Go stack trace:\n%s", errOut)
			}
			// The count after one case is the count before the next.
			after := corpusWrites(t, clusters)
			for c, n := range after {
				if d := n - before[c]; d != 0 {
					t.Errorf("cluster %s: %d mutating requests, want 0", c, d)
				}
			}
			before = after
			t.Logf("exit %d; %s", code, corpusProblem(errOut, want))
		})
		if !ok { // it may have stopped before counting: count afresh
			before = corpusWrites(t, clusters)
		}
	}

	// The control: the same clusters, counted the same way, see the writes
	// of a valid repository (the unsigned-commit case's own repository).
	t.Run("control-valid-repo-writes", func(t *testing.T) {
		before := corpusWrites(t, clusters)
		work, _ := testenv.FixtureRepo(t, filepath.Join(corpus, "agent-unsigned-commit/repo"))
		code, out, errOut := run(t, "apply", "--repo", work, "--kubeconfig", clusters.KubeconfigFile, "--change", change, "--now", night)
		if code != ExitOK {
			t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		after := corpusWrites(t, clusters)
		for _, c := range clusters.Items {
			if after[c.Name]-before[c.Name] == 0 {
				t.Errorf("cluster %s: no mutating request counted for a rollout that wrote to it", c.Name)
			}
		}
	})
}

// corpusExpectation reads a case's expectation file: which command rejects
// it, and the lines its output must contain.
func corpusExpectation(t *testing.T, dir string) (command string, want []string) {
	t.Helper()
	for _, f := range []struct{ file, command string }{
		{"expect.txt", "apply"}, {"expect-apply.txt", "apply"}, {"expect-run.txt", "run"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, f.file))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				want = append(want, line)
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s is empty: a case must say what its error names", f.file)
		}
		return f.command, want
	}
	t.Fatalf("%s has no expect.txt, expect-apply.txt or expect-run.txt", dir)
	return "", nil
}

// corpusSettled waits until the fresh API servers stop writing on their
// own (bootstrap objects, priority-and-fairness configuration) and returns
// the counts then: two readings a second apart that agree, within 30 s.
func corpusSettled(t *testing.T, cs *testenv.Clusters) map[string]int {
	t.Helper()
	last := corpusWrites(t, cs)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		now := corpusWrites(t, cs)
		if fmt.Sprint(now) == fmt.Sprint(last) {
			return now
		}
		last = now
	}
	return last
}

// corpusWrites counts each cluster's real (not dry-run) writes so far,
// leaving out leases and events, which the API server writes on its own.
func corpusWrites(t *testing.T, cs *testenv.Clusters) map[string]int {
	t.Helper()
	counts := make([]testenv.Requests, len(cs.Items))
	errs := make([]error, len(cs.Items))
	var wg sync.WaitGroup
	for i, c := range cs.Items {
		wg.Go(func() {
			counts[i], errs[i] = c.RequestCounts(context.Background(), map[string]string{"dry_run": ""}, "leases", "events")
		})
	}
	wg.Wait()
	out := map[string]int{}
	for i, c := range cs.Items {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		out[c.Name] = counts[i].Mutating()
	}
	return out
}

// corpusRunAgent runs convoy run on dir/config.yaml. A config that fails to load
// ends the command at once. The agent-unsigned-commit case runs an agent on
// a repository whose head commit is unsigned: it is stopped once /readyz
// reports the refusal, and its log and readiness answer are returned.
func corpusRunAgent(t *testing.T, dir, kubeconfig string) (int, string) {
	t.Helper()
	config := filepath.Join(dir, "config.yaml")
	var stdout bytes.Buffer
	var stderr testenv.LogBuffer
	if filepath.Base(dir) != "agent-unsigned-commit" {
		code := Execute([]string{"run", "--config", config}, &stdout, &stderr)
		return code, stderr.String()
	}
	repo, _ := testenv.FixtureRepo(t, filepath.Join(dir, "repo"))
	listen := corpusFreeAddr(t)
	tmpl, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("@REPO_URL@", "file://"+repo, "@KEYS_FILE@", filepath.Join(dir, "trusted-keys.asc"),
		"@KUBECONFIG@", kubeconfig, "@LISTEN@", listen, "@WORK_DIR@", t.TempDir()).Replace(string(tmpl))
	config = filepath.Join(t.TempDir(), "config.yaml")
	corpusWrite(t, config, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	go func() {
		defer cancel()
		ready <- corpusUnready(ctx, t, "http://"+listen+"/readyz", 60*time.Second)
	}()
	code := ExecuteContext(ctx, []string{"run", "--config", config, "--log-format", "text"}, &stdout, &stderr)
	cancel()
	return code, stderr.String() + <-ready
}

// corpusUnready polls url until it answers 503 with a reason naming the
// refused commit, and returns "readyz: <status> <body>"; it gives up when
// ctx ends (the agent stopped).
func corpusUnready(ctx context.Context, t *testing.T, url string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "verify commit") {
				return fmt.Sprintf("readyz: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%s did not report the refused commit within %s", url, timeout)
	return ""
}

// corpusFreeAddr returns a loopback address with a port that was free a moment ago.
func corpusFreeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// corpusProblem is the first stderr line holding an expected line, for the
// test log's corpus table.
func corpusProblem(stderr string, want []string) string {
	for _, line := range strings.Split(stderr, "\n") {
		for _, w := range want {
			if strings.Contains(line, w) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}

func corpusWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func corpusRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func corpusSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestPlanMasksSecretsInPolicyMessages: policies see every rendered object,
// Secrets included, so a policy message may quote a Secret's values; the
// plan's text, JSON and Markdown (the pull-request comment) must not carry
// them, written or base64-encoded.
func TestPlanMasksSecretsInPolicyMessages(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	work, _ := testenv.FixtureRepo(t, filepath.Join(root, "fixtures/invalid/agent-unsigned-commit/repo"))
	// The policy lands first: a change is judged by the rules before it.
	corpusWrite(t, filepath.Join(work, "policies/audit.rego"), `package convoy.audit

warn contains msg if {
	some o in input.objects
	o.kind == "Secret"
	msg := sprintf("secret %s holds %v %v", [o.metadata.name, o.data, o.stringData])
}
`)
	testenv.CommitWorkTree(t, work, "audit Secrets")
	corpusWrite(t, filepath.Join(work, "clusters/y/secret.yaml"), `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: default
stringData:
  password: hunter2-plaintext
data:
  token: c3VwZXItc2VjcmV0LXRva2Vu
`)
	corpusWrite(t, filepath.Join(work, "clusters/y/kustomization.yaml"), "resources:\n- app.yaml\n- secret.yaml\n")
	testenv.CommitWorkTree(t, work, "a Secret")
	change := filepath.Join(root, "fixtures/changes/normal-approved.json")
	for _, format := range []string{"text", "json", "markdown"} {
		code, out, errOut := run(t, "plan", "--repo", work, "--change", change, "--now", night, "-o", format)
		if code != ExitOK || !strings.Contains(out, "secret db holds") {
			t.Fatalf("-o %s: exit %d, want 0 with the audit warning\n%s\n%s", format, code, out, errOut)
		}
		for _, secret := range []string{"hunter2-plaintext", "c3VwZXItc2VjcmV0LXRva2Vu", "super-secret-token"} {
			if strings.Contains(out+errOut, secret) {
				t.Errorf("-o %s prints the Secret value %q:\n%s", format, secret, out)
			}
		}
	}
}
