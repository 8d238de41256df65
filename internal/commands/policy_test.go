package commands

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func fixture(name string) string {
	return filepath.Join("..", "..", "fixtures", "policy-inputs", name)
}

type evalOutput struct {
	Verdict string              `json:"verdict"`
	Deny    []map[string]string `json:"deny"`
	Hold    []map[string]string `json:"hold"`
	Warn    []map[string]string `json:"warn"`
}

func TestPolicyEval(t *testing.T) {
	msg := func(pkg, text, loc string) map[string]string {
		return map[string]string{"package": pkg, "msg": text, "location": loc}
	}
	none := []map[string]string{}
	tests := []struct {
		name string
		args []string
		code int
		want evalOutput
	}{
		{"allow", []string{"--input", fixture("allow-normal.json")}, ExitOK,
			evalOutput{"allow", none, none, none}},
		{"deny", []string{"--input", fixture("deny-major-one-approval.json")}, ExitDeny,
			evalOutput{"deny", []map[string]string{msg("convoy.approvals", "major change needs 2 approvals, has 1 (bob)", "builtin/approvals.rego")}, none, none}},
		{"deny with data", []string{"--input", fixture("allow-normal.json"), "--data", writeFile(t, "data.yaml", "approvals:\n  normal: 3\n")}, ExitDeny,
			evalOutput{"deny", []map[string]string{msg("convoy.approvals", "normal change needs 3 approvals, has 1 (bob)", "builtin/approvals.rego")}, none, none}},
		{"hold", []string{"--input", fixture("hold-major-business-hours.json")}, ExitHold,
			evalOutput{"hold", none, []map[string]string{{"package": "convoy.business_hours",
				"msg":      "major change to production cluster prod-primary is held during business hours (09:00-18:00 Asia/Shanghai); retry after 18:00",
				"location": "builtin/business_hours.rego", "until": "2026-11-25T18:00:00+08:00"}}, none}},
		{"repo policy", []string{"--input", fixture("allow-normal.json"), "--policies", writeFile(t, "team.rego", "package convoy.team\n\nwarn contains \"mind the gap\" if true\n")}, ExitOK,
			evalOutput{"allow", none, none, []map[string]string{msg("convoy.team", "mind the gap", "")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Execute(append([]string{"policy", "eval", "-o", "json"}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			var got evalOutput
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
			}
			// Locations of repo policies are in temporary folders.
			for _, m := range got.Warn {
				if !strings.HasPrefix(m["location"], "builtin/") {
					m["location"] = ""
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPolicyEvalCompileErrorDenies: a policy that does not compile is a
// deny (fail closed) naming its file and line, on stdout and stderr.
func TestPolicyEvalCompileErrorDenies(t *testing.T) {
	bad := writeFile(t, "bad.rego", "package convoy.bad\n\ndeny contains msg if {\n")
	var stdout, stderr bytes.Buffer
	code := Execute([]string{"policy", "eval", "-o", "json", "--input", fixture("allow-normal.json"), "--policies", bad}, &stdout, &stderr)
	if code != ExitDeny {
		t.Errorf("exit code = %d, want %d", code, ExitDeny)
	}
	var got evalOutput
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	file := filepath.Join(bad, "bad.rego")
	want := evalOutput{"deny", []map[string]string{{"package": "compile", "location": file + ":4",
		"msg": "policies do not compile: " + file + ":4: rego_parse_error: unexpected eof token"}}, []map[string]string{}, []map[string]string{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if !strings.HasSuffix(stderr.String(), "/bad.rego:4: rego_parse_error: unexpected eof token\n") {
		t.Errorf("stderr = %q, want the problem with file and line", stderr.String())
	}
}

func TestPolicyEvalBadInput(t *testing.T) {
	missing := fixture("invalid-missing-fields.json")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing fields", []string{"--input", missing},
			"convoy: " + missing + ": missing required field cluster.environment (string)\n" +
				"convoy: " + missing + ": missing required field now.time (string)\n" +
				"convoy: " + missing + ": missing required field windows (array)\n"},
		{"invalid JSON", []string{"--input", writeFile(t, "in.json", "{\n  \"fleet\": \"x\"\n  \"cluster\": {}\n}\n")},
			"line 3, column 3: invalid JSON: invalid character '\"' after object key:value pair\n"},
		{"missing input", []string{"--input", "nope.json"}, "convoy: read input: open nope.json: no such file or directory\n"},
		{"bad output", []string{"--input", fixture("allow-normal.json"), "-o", "yaml"}, "convoy: -o yaml: want text or json\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Execute(append([]string{"policy", "eval"}, tt.args...), &stdout, &stderr)
			if code != ExitError {
				t.Errorf("exit code = %d, want %d", code, ExitError)
			}
			if !strings.HasSuffix(stderr.String(), tt.want) {
				t.Errorf("stderr = %q, want it to end with %q", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

func TestPolicyEvalText(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Execute([]string{"policy", "eval", "--input", fixture("deny-quota.json")}, &stdout, &stderr)
	want := "verdict: deny\ndeny: convoy.quota: cluster prod-primary: cpu requests 122 exceed capacity 100 (builtin/quota.rego)\n"
	if code != ExitDeny || stdout.String() != want {
		t.Errorf("exit %d, stdout %q; want %d, %q", code, stdout.String(), ExitDeny, want)
	}
}

func TestPolicyTest(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Execute([]string{"policy", "test"}, &stdout, &stderr); code != ExitOK {
		t.Fatalf("policy test of the built-ins: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "PASS: ") {
		t.Errorf("stdout = %q, want an opa test summary", stdout.String())
	}

	failing := writeFile(t, "team_test.rego", "package convoy.team_test\n\ntest_always_fails if {\n\t1 == 2\n}\n")
	stdout.Reset()
	stderr.Reset()
	code := Execute([]string{"policy", "test", failing}, &stdout, &stderr)
	if code != ExitDeny {
		t.Errorf("exit code = %d, want %d", code, ExitDeny)
	}
	if !strings.Contains(stdout.String(), "data.convoy.team_test.test_always_fails: FAIL") || !strings.Contains(stdout.String(), "FAIL: 1/") {
		t.Errorf("stdout does not report the failure:\n%s", stdout.String())
	}
}

// writeFile writes content to name in a fresh folder and returns the folder
// for .rego files (which --policies and policy test take) or the file.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(name, ".rego") {
		return dir
	}
	return path
}
