package policy_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/convoy-gitops/convoy/internal/policy"
)

func TestTestRunsBuiltinAndRepoTests(t *testing.T) {
	var out bytes.Buffer
	passed, failed, err := policy.RunTests(context.Background(), nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	if failed != 0 || passed < 40 {
		t.Fatalf("built-in tests: %d passed, %d failed, want >= 40 and 0:\n%s", passed, failed, out.String())
	}
	builtins := passed

	dir := writePolicy(t, "team_test.rego", `package convoy.team_test

import data.convoy.approvals

test_ok if {
	count(approvals.deny) == 0 with input as {"cluster": {"environment": "staging"}, "change": {"category": "standard", "approvals": [{"user": "bob", "permission": "write", "type": "User"}]}}
}

test_broken if {
	count(approvals.deny) == 0 with input as {"cluster": {"environment": "production"}, "change": {"category": "unreviewed"}}
}
`)
	out.Reset()
	passed, failed, err = policy.RunTests(context.Background(), []string{dir}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if passed != builtins+1 || failed != 1 {
		t.Errorf("with a repo test file: %d passed, %d failed, want %d and 1", passed, failed, builtins+1)
	}
	if !strings.Contains(out.String(), "data.convoy.team_test.test_broken: FAIL") {
		t.Errorf("report does not name the failing test:\n%s", out.String())
	}
}
