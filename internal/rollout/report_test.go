package rollout_test

import (
	"strings"
	"testing"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/rollout"
)

// A policy message or name that quotes a change's content cannot turn the
// pull-request comment into an image, a link, HTML, a table row or a
// mention; the approvers are mentioned on purpose.
func TestMarkdownEscapesMessages(t *testing.T) {
	evil := "![pwned](https://evil.example/x.png) <img src=x onerror=alert(1)> [click](https://evil.example) @acme/everyone | x | **bold**\n# heading"
	doc := rollout.PlanDoc{
		Revision: "0123456789abcdef", Verdict: policy.Deny,
		Change: &change.Change{Category: "normal", PullRequest: &change.PullRequest{Author: "alice"},
			Approvals: []change.Approval{{User: "bob", Permission: "write", Type: "User"}}},
		Clusters: []rollout.PlanCluster{{Name: "prod", Wave: "primary", Verdict: policy.Deny,
			Deny: []policy.Message{{Msg: evil}}}},
	}
	md := rollout.Markdown(doc)
	for _, bad := range []string{"![", "<img", "[click]", "@acme", "| x |", "**bold**", "\n# heading"} {
		if strings.Contains(md, bad) {
			t.Errorf("the comment holds %q:\n%s", bad, md)
		}
	}
	for _, want := range []string{"approved by @bob", `\!\[pwned\]`, "&lt;img", "&#64;acme/everyone"} {
		if !strings.Contains(md, want) {
			t.Errorf("the comment lacks %q:\n%s", want, md)
		}
	}
}
