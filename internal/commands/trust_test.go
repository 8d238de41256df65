package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// fleetRepo is fixtures/fleet as a git repository: one commit, trailers
// as the change source.
func fleetRepo(t *testing.T) string {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir, _ := testenv.FixtureRepo(t, fixtureFleet)
	return dir
}

func edit(t *testing.T, dir, path, old, new string) {
	t.Helper()
	p := filepath.Join(dir, path)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

const approvedNormal = "\n\n## Rollback\nRevert.\n\nChange-Category: normal\nApproved-by: Bob <bob@example.com>\n"

// The change is exactly a commit: an uncommitted edit is neither rendered
// nor planned nor applied; --worktree shows it, as uncommitted, with no
// change; --revision takes what git takes.
func TestTheChangeIsACommit(t *testing.T) {
	dir := fleetRepo(t)
	edit(t, dir, "environments/base/deployment.yaml", `app.kubernetes.io/version: "1.4.2"`, `app.kubernetes.io/version: "1.4.3"`)
	first := testenv.CommitWorkTree(t, dir, "Version 1.4.3"+approvedNormal)
	edit(t, dir, "environments/base/deployment.yaml", `app.kubernetes.io/version: "1.4.3"`, `app.kubernetes.io/version: "6.6.6-uncommitted"`)

	code, out, errOut := run(t, "render", "--repo", dir, "--cluster", "staging", "-o", "json")
	if code != ExitOK || !strings.Contains(out, "1.4.3") || strings.Contains(out, "6.6.6") || !strings.Contains(out, `"revision": "`+first) {
		t.Errorf("render: exit %d, want HEAD's content (1.4.3) at %s, not the edit\n%s%s", code, first[:7], out, errOut)
	}
	code, doc, errOut := runPlanJSON(t, "--repo", dir, "--now", night)
	if code != ExitOK || doc.Revision != first || doc.Change == nil || doc.Change.Revision != first {
		t.Fatalf("plan: exit %d revision %s, want allow of %s with its change\n%s", code, doc.Revision, first[:7], errOut)
	}
	code, out, errOut = run(t, "render", "--repo", dir, "--cluster", "staging", "--worktree", "-o", "json")
	if code != ExitOK || !strings.Contains(out, "6.6.6-uncommitted") || !strings.Contains(out, `"uncommitted": true`) {
		t.Errorf("render --worktree: exit %d, want the edit, labelled uncommitted\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, "plan", "--repo", dir, "--worktree", "--now", night)
	if code != ExitDeny || !strings.Contains(out, "the work tree (uncommitted, on "+first[:12]+")") || !strings.Contains(out, "unreviewed change") {
		t.Errorf("plan --worktree: exit %d, want a deny of unreviewed work, labelled\n%s%s", code, out, errOut)
	}
	if code, _, errOut = run(t, "plan", "--repo", dir, "--worktree", "--change", "../../fixtures/changes/normal-approved.json"); code != ExitError || !strings.Contains(errOut, "no approval applies") {
		t.Errorf("plan --worktree --change: exit %d, want 2: %s", code, errOut)
	}
	code, _, errOut = run(t, "apply", "--repo", dir, "--kubeconfig", filepath.Join(t.TempDir(), "none"), "--now", night)
	if code != ExitError || !strings.Contains(errOut, "uncommitted changes (environments/base/deployment.yaml)") {
		t.Errorf("apply of a dirty tree: exit %d, want 2 naming the file: %s", code, errOut)
	}

	for _, rev := range []string{"HEAD~1", first[:7], "main"} {
		code, out, errOut := run(t, "render", "--repo", dir, "--cluster", "staging", "--revision", rev, "-o", "json")
		want := "1.4.3"
		if rev == "HEAD~1" {
			want = "1.4.2"
		}
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("render --revision %s: exit %d, want %s\n%s", rev, code, want, errOut)
		}
	}
	if code, _, errOut := run(t, "render", "--repo", dir, "--revision", "no-such-branch"); code != ExitError || !strings.Contains(errOut, `revision "no-such-branch"`) {
		t.Errorf("unknown revision: exit %d: %s", code, errOut)
	}
}

// A change is judged by the rules of its base, never its own: a commit that
// sets major approvals to 0 in its own fleet.yaml, and one that adds a
// policy extending convoy.approvals, are judged by the base's rules, flagged
// as governance edits, and denied.
func TestRulesComeFromTheBase(t *testing.T) {
	dir := fleetRepo(t)
	edit(t, dir, "fleet.yaml", "approvals: {emergency: 1, standard: 1, normal: 1, major: 2}", "approvals: {emergency: 1, standard: 1, normal: 1, major: 0}")
	write := func(p, c string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("policies/approvers.rego", "package convoy.approvals\n\napprovers(_) := {\"x\", \"y\"}\n")
	write("policies/record.rego", "package convoy.change_record\n\nhas_rollback(_) := true\n")
	sha := testenv.CommitWorkTree(t, dir, "Loosen the gate\n\nChange-Category: major\n")
	code, doc, errOut := runPlanJSON(t, "--repo", dir, "--now", night)
	if code != ExitDeny {
		t.Fatalf("exit %d, want 1 (deny)\n%s", code, errOut)
	}
	for _, c := range doc.Clusters {
		msgs := strings.Join(messageTexts(c.Deny), "\n")
		for _, want := range []string{
			"major change needs 2 approvals, has 0",
			"the change edits the rules that judge it (policies/approvers.rego, policies/record.rego, spec.policy.data)",
			"major change " + sha[:7] + " has no pull request and its commit message has no rollback plan",
		} {
			if !strings.Contains(msgs, want) {
				t.Errorf("cluster %s: denies lack %q:\n%s", c.Name, want, msgs)
			}
		}
		if c.Rules != "base" || c.Base == "" || c.Base == sha {
			t.Errorf("cluster %s judged by %s rules of %q, want the base's", c.Name, c.Rules, c.Base)
		}
	}
	// With --base at the commit itself, its rules judge the next commit:
	// the package override is then refused as a policy that does not
	// compile, naming the file.
	next := testenv.CommitWorkTree(t, dir, "Anything"+approvedNormal)
	code, doc, _ = runPlanJSON(t, "--repo", dir, "--revision", next, "--now", night)
	if code != ExitDeny || !strings.Contains(strings.Join(messageTexts(doc.Clusters[0].Deny), "\n"), "policies/approvers.rego:1: rego_compile_error: package convoy.approvals is built in") {
		t.Errorf("exit %d, want the override refused by file: %+v", code, doc.Clusters[0].Deny)
	}
}

// messageTexts are the texts of messages.
func messageTexts(ms []policy.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Msg
	}
	return out
}
