package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/convoy-gitops/convoy/internal/change"
)

// TestNotCountedMatchesRego keeps the two answers to "does this approval
// count" equal: change.NotCounted, which records and comments use, and
// convoy.lib's not_counted, which the policies use.
func TestNotCountedMatchesRego(t *testing.T) {
	modules, err := loadModules(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query("x := data.convoy.lib.not_counted(input.c, input.a)"), rego.SetRegoVersion(ast.RegoV1),
		rego.Store(configStore(map[string]any{"trustedBots": []any{"renovate[bot]"}}))}
	for name, m := range modules {
		if m.Package.Path.String() == "data.convoy.lib" {
			opts = append(opts, rego.ParsedModule(m))
			t.Logf("using %s", name)
		}
	}
	query, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bots := []string{"renovate[bot]"}
	authors := []string{"alice", ""}
	approvals := []change.Approval{
		{User: "bob", Permission: "write", Type: "User"},
		{User: "Bob", Permission: "MAINTAIN", Type: "User"},
		{User: "bob", Permission: "admin"},
		{User: "alice", Permission: "admin", Type: "User"},
		{User: "ALICE", Permission: "write", Type: "User"},
		{User: "mallory", Permission: "read", Type: "User"},
		{User: "tri", Permission: "triage", Type: "User"},
		{User: "gone", Permission: "none", Type: "User"},
		{User: "what", Permission: "", Type: "User"},
		{User: "renovate[bot]", Type: "Bot"},
		{User: "Renovate[bot]", Type: "Bot", Permission: "write"},
		{User: "dependabot[bot]", Type: "Bot", Permission: "write"},
		{User: "sneaky[bot]", Type: "User", Permission: "write"},
		{User: "acme", Type: "Organization", Permission: "admin"},
		{User: "ghost", Type: "Mannequin", Permission: "read"},
	}
	for _, author := range authors {
		for _, a := range approvals {
			t.Run(fmt.Sprintf("%s/%s", author, a.User), func(t *testing.T) {
				c := map[string]any{"pull_request": nil}
				if author != "" {
					c["pull_request"] = map[string]any{"author": author}
				}
				in := map[string]any{"c": c, "a": map[string]any{"user": a.User, "permission": a.Permission, "type": a.Type}}
				rs, err := query.Eval(context.Background(), rego.EvalInput(in))
				if err != nil || len(rs) != 1 {
					t.Fatalf("rego: %v, %d results", err, len(rs))
				}
				got := rs[0].Bindings["x"]
				want := change.NotCounted(a, author, bots)
				if got != want {
					t.Errorf("rego says %q, Go says %q", got, want)
				}
			})
		}
	}
}

// TestEveryBuiltinIsClassified fails when OPA offers a builtin that is
// neither allowed nor denied: a newer OPA's builtins are refused until
// someone decides here.
func TestEveryBuiltinIsClassified(t *testing.T) {
	allowed := map[string]bool{}
	for _, n := range allowedBuiltins {
		if _, denied := deniedBuiltins[n]; denied {
			t.Errorf("%s is both allowed and denied", n)
		}
		allowed[n] = true
	}
	for _, b := range ast.CapabilitiesForThisVersion().Builtins {
		if _, denied := deniedBuiltins[b.Name]; !allowed[b.Name] && !denied {
			t.Errorf("builtin %s is neither in allowedBuiltins nor in deniedBuiltins", b.Name)
		}
	}
	caps := capabilities()
	for _, b := range caps.Builtins {
		if _, denied := deniedBuiltins[b.Name]; denied || strings.HasPrefix(b.Name, "net.") || b.Name == "http.send" {
			t.Errorf("capabilities allow %s", b.Name)
		}
	}
	if len(caps.Builtins) != len(allowedBuiltins) {
		t.Errorf("capabilities hold %d builtins, want the %d allowed", len(caps.Builtins), len(allowedBuiltins))
	}
}
