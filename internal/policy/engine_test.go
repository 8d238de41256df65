package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/policy"
)

// writePolicy writes a repository policy file into a fresh folder.
func writePolicy(t *testing.T, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readInput(t *testing.T, name string) policyInput {
	t.Helper()
	file := filepath.Join("..", "..", "fixtures", "policy-inputs", name)
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	v, err := policy.ParseInput(file, raw)
	if err != nil {
		t.Fatal(err)
	}
	return policyInput{v}
}

func TestEvaluateFixtures(t *testing.T) {
	e, err := policy.New(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		input string
		want  policy.Decision
	}{
		{"allow-normal.json", policy.Decision{Verdict: policy.Allow, Deny: []policy.Message{}, Hold: []policy.Message{}, Warn: []policy.Message{}}},
		{"deny-major-one-approval.json", policy.Decision{Verdict: policy.Deny,
			Deny: []policy.Message{{Package: "convoy.approvals", Msg: "major change needs 2 approvals, has 1 (bob)", Location: "builtin/approvals.rego"}},
			Hold: []policy.Message{}, Warn: []policy.Message{}}},
		{"hold-major-business-hours.json", policy.Decision{Verdict: policy.Hold, Deny: []policy.Message{},
			Hold: []policy.Message{{Package: "convoy.business_hours", Location: "builtin/business_hours.rego",
				Msg:   "major change to production cluster prod-primary is held during business hours (09:00-18:00 Asia/Shanghai); retry after 18:00",
				Until: "2026-11-25T18:00:00+08:00"}},
			Warn: []policy.Message{}}},
		{"hold-window.json", policy.Decision{Verdict: policy.Hold, Deny: []policy.Message{},
			Hold: []policy.Message{{Package: "convoy.business_hours", Location: "builtin/business_hours.rego",
				Msg:   "window business-hours holds normal changes on production cluster prod-primary until 2026-11-25T18:00:00+08:00",
				Until: "2026-11-25T18:00:00+08:00"}},
			Warn: []policy.Message{}}},
		{"deny-quota.json", policy.Decision{Verdict: policy.Deny,
			Deny: []policy.Message{{Package: "convoy.quota", Msg: "cluster prod-primary: cpu requests 122 exceed capacity 100", Location: "builtin/quota.rego"}},
			Hold: []policy.Message{}, Warn: []policy.Message{}}},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			got := e.EvaluateValue(context.Background(), readInput(t, tt.input).v)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDataOverridesDefaults(t *testing.T) {
	e, err := policy.New(policy.Options{Data: map[string]any{"approvals": map[string]any{"major": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	got := e.EvaluateValue(context.Background(), readInput(t, "deny-major-one-approval.json").v)
	if got.Verdict != policy.Allow {
		t.Errorf("verdict with approvals.major 1 = %s (%v), want allow", got.Verdict, got.Deny)
	}
}

func TestCompileErrorNamesFileAndLine(t *testing.T) {
	dir := writePolicy(t, "bad.rego", "package convoy.bad\n\ndeny contains msg if {\n\tmsg := \n}\n")
	_, err := policy.New(policy.Options{Dirs: []string{dir}})
	var ce *policy.CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("New error = %v, want a *policy.CompileError", err)
	}
	want := filepath.Join(dir, "bad.rego") + ":5: rego_parse_error: unexpected } token"
	if got := err.Error(); got != want {
		t.Errorf("error:\n got %q\nwant %q", got, want)
	}
}

func TestCompileErrorOfUnsafeRule(t *testing.T) {
	dir := writePolicy(t, "unsafe.rego", "package convoy.bad\n\ndeny contains msg if {\n\tinput.x == 1\n}\n")
	_, err := policy.New(policy.Options{Dirs: []string{dir}})
	want := filepath.Join(dir, "unsafe.rego") + ":3: rego_unsafe_var_error: var msg is unsafe"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}

func TestTestFilesAreNotEvaluated(t *testing.T) {
	// A _test.rego file that would not compile against the engine's query is
	// never loaded for evaluation.
	dir := writePolicy(t, "x_test.rego", "package convoy.x_test\n\ndeny contains 1\n")
	e, err := policy.New(policy.Options{Dirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.EvaluateValue(context.Background(), readInput(t, "allow-normal.json").v); got.Verdict != policy.Allow {
		t.Errorf("verdict = %s %v, want allow", got.Verdict, got.Deny)
	}
}

func TestFailClosed(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		timeout time.Duration
		want    []policy.Message
	}{
		{
			name: "builtin error",
			src:  "package convoy.bad\n\ndeny contains \"no\" if {\n\tto_number(input.cluster.name) > 1\n}\n",
			want: []policy.Message{{Package: "convoy.bad", Location: "bad.rego:4",
				Msg: `policy evaluation failed: eval_builtin_error: to_number: strconv.ParseFloat: parsing "prod-primary": invalid syntax`}},
		},
		{
			name: "divide by zero",
			src:  "package convoy.bad\n\nhold contains \"no\" if {\n\tcount(input.objects) / (count(input.windows) - 1) == 12\n}\n",
			want: []policy.Message{{Package: "convoy.bad", Location: "bad.rego:4",
				Msg: "policy evaluation failed: eval_builtin_error: div: divide by zero"}},
		},
		{
			name:    "timeout",
			src:     "package convoy.bad\n\nwarn contains \"no\" if {\n\tcount([x | some x in numbers.range(1, 100000000); x % 7 == 0]) > 0\n}\n",
			timeout: 50 * time.Millisecond,
			want:    []policy.Message{{Msg: "policy evaluation timed out after 50ms"}},
		},
		{
			name: "number result",
			src:  "package convoy.bad\n\ndeny contains 42 if true\n",
			want: []policy.Message{{Package: "convoy.bad", Location: "bad.rego:3",
				Msg: `data.convoy.bad.deny holds a number 42; want strings or objects with a string "msg"`}},
		},
		{
			name: "object without msg",
			src:  "package convoy.bad\n\nwarn contains {\"text\": \"hi\"} if true\n",
			want: []policy.Message{{Package: "convoy.bad", Location: "bad.rego:3",
				Msg: `data.convoy.bad.warn holds an object {"text": "hi"}; want strings or objects with a string "msg"`}},
		},
		{
			name: "not a set",
			src:  "package convoy.bad\n\nhold := \"later\"\n",
			want: []policy.Message{{Package: "convoy.bad", Location: "bad.rego:3",
				Msg: `data.convoy.bad.hold is a string "later"; want a set of strings or of objects with a string "msg"`}},
		},
		{
			name: "undefined",
			src:  "package convoy.bad\n\ndeny := {\"no\"} if input.cluster.name == \"elsewhere\"\n",
			want: []policy.Message{{Package: "convoy.bad", Location: "bad.rego:3",
				Msg: "data.convoy.bad.deny is undefined; want a set of messages"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writePolicy(t, "bad.rego", tt.src)
			e, err := policy.New(policy.Options{Dirs: []string{dir}, Timeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			got := e.EvaluateValue(context.Background(), readInput(t, "allow-normal.json").v)
			for i := range got.Deny {
				if got.Deny[i].Location != "" {
					got.Deny[i].Location = filepath.Base(got.Deny[i].Location)
				}
			}
			if got.Verdict != policy.Deny {
				t.Errorf("verdict = %s, want deny", got.Verdict)
			}
			if diff := cmp.Diff(tt.want, got.Deny); diff != "" {
				t.Errorf("deny (-want +got):\n%s", diff)
			}
		})
	}
}

func TestObjectMessages(t *testing.T) {
	dir := writePolicy(t, "team.rego", "package convoy.team\n\nwarn contains {\"msg\": \"look\", \"severity\": 2} if true\n")
	e, err := policy.New(policy.Options{Dirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	got := e.EvaluateValue(context.Background(), readInput(t, "allow-normal.json").v)
	want := []policy.Message{{Package: "convoy.team", Msg: "look", Location: filepath.Join(dir, "team.rego") + ":3"}}
	if diff := cmp.Diff(want, got.Warn); diff != "" {
		t.Errorf("warn (-want +got):\n%s", diff)
	}
	if got.Verdict != policy.Allow {
		t.Errorf("verdict = %s, want allow: warnings never block", got.Verdict)
	}
}
