package policy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/convoy-gitops/convoy/internal/policy"
)

// The proof of concept of a pull request that lifts its own deny: one file
// adds an approver to package convoy.approvals, one makes convoy.change_record's
// rollback check always hold, one rewrites the policy data. Each is refused,
// naming its file and line, and the decision is a deny.
func TestRepoPoliciesCannotExtendBuiltinPackages(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"more_approvers.rego": "package convoy.approvals\n\napprovers(_) := {\"x\", \"y\"}\n",
		"rollback.rego":       "package convoy.change_record\n\nhas_rollback(_) := true\n",
		"config.rego":         "package convoy.config\n\napprovals := {\"major\": 0}\n",
		"lib.rego":            "package convoy.lib.extra\n\nx := 1\n",
		"root.rego":           "package convoy\n\nconfig := {}\n",
		"own.rego":            "package convoy.team_rules\n\ndeny contains \"no\" if input.x\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := policy.New(policy.Options{Dirs: []string{dir}})
	var ce *policy.CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("New = %v, want a *CompileError", err)
	}
	for _, want := range []string{
		filepath.Join(dir, "more_approvers.rego") + ":1: rego_compile_error: package convoy.approvals is built in",
		filepath.Join(dir, "rollback.rego") + ":1: rego_compile_error: package convoy.change_record is built in",
		filepath.Join(dir, "config.rego") + ":1: rego_compile_error: package convoy.config is built in",
		filepath.Join(dir, "lib.rego") + ":1: rego_compile_error: package convoy.lib.extra is built in",
		filepath.Join(dir, "root.rego") + ":1: rego_compile_error: package convoy is convoy's own",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	if strings.Contains(err.Error(), "own.rego") {
		t.Errorf("a package of the repository's own was refused:\n%s", err)
	}
	if d := ce.Decision(); d.Verdict != policy.Deny || len(d.Deny) != 5 {
		t.Errorf("decision = %s with %d denies, want deny with 5", d.Verdict, len(d.Deny))
	}
}

// No policy reaches the network or the host: a policy calling http.send
// (at a server that counts), net.lookup_ip_addr, opa.runtime or time.now_ns
// does not compile, naming file and line, and no request is made.
func TestRepoPoliciesCannotReachTheNetworkOrHost(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.Write([]byte(`{"secret": "internal"}`))
	}))
	defer srv.Close()
	calls := map[string]string{
		"http.send":          `http.send({"method": "get", "url": "` + srv.URL + `"}).body.secret`,
		"net.lookup_ip_addr": `net.lookup_ip_addr("localhost")`,
		"opa.runtime":        `opa.runtime().env`,
		"time.now_ns":        `time.now_ns()`,
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			dir := writePolicy(t, "leak.rego", "package convoy.leak\n\ndeny contains msg if {\n\tmsg := sprintf(\"%v\", ["+call+"])\n}\n")
			e, err := policy.New(policy.Options{Dirs: []string{dir}})
			if err == nil {
				d := e.EvaluateValue(context.Background(), readInput(t, "allow-normal.json").v)
				t.Fatalf("compiled; evaluation gave %s %+v", d.Verdict, d.Deny)
			}
			want := filepath.Join(dir, "leak.rego") + ":4: rego_type_error: undefined function " + name
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error = %v, want %q", err, want)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the server saw %d requests, want 0", n)
	}
}

// A policy file that is a symbolic link is refused: it could read any file
// of the agent's machine, or never end (/dev/zero).
func TestSymlinkedPolicyRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.rego")); err != nil {
		t.Fatal(err)
	}
	_, err := policy.New(policy.Options{Dirs: []string{dir}})
	want := filepath.Join(dir, "zero.rego") + ":1: rego_parse_error: not a regular file"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// Negative replicas would subtract from the quota's sums: the engine (with
// its Go index of the objects, as the agent runs it) denies them by name.
func TestNegativeReplicasDenied(t *testing.T) {
	e, err := policy.New(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs := objects5000()[:30]
	objs[3].Object["spec"].(map[string]any)["replicas"] = int64(-40)
	d := e.Evaluate(context.Background(), benchInput(t, objs))
	want := "apps/v1/Deployment/team-3/app-1: negative pod count -40 (spec.replicas, spec.parallelism or spec.completions): it would hide requests from the quota"
	if d.Verdict != policy.Deny || len(d.Deny) != 1 || d.Deny[0].Msg != want {
		t.Errorf("decision %s %+v, want the one deny %q", d.Verdict, d.Deny, want)
	}
}
