package commands

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/rollout"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// TestPlanGitHubPullRequest: a pull request with labels and reviews on the
// GitHub stand-in is planned before it merges; the plan carries the change
// as GitHub states it, the pull request gets one status and one comment, and
// a second plan edits that comment instead of adding one.
func TestPlanGitHubPullRequest(t *testing.T) {
	gh := testenv.NewFakeGitHub(t)
	gh.RequireToken("s3cr3t-token")
	gh.AddCollaborators("write", "bob", "carol")
	t.Setenv("GITHUB_TOKEN", "s3cr3t-token")
	head := strings.Repeat("ab", 20)
	gh.AddPullRequest(testenv.PR{Number: 7, Title: "Scale the scheduler", Author: "alice", Labels: []string{"change/major"},
		HeadSHA: head, Body: "## Why\nLoad.\n\n## Rollback\nRevert this pull request.\n"})
	gh.AddCommit(head, "alice", "Scale the scheduler", true)
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	gh.AddReview(7, testenv.Review{User: "bob", State: "APPROVED", SubmittedAt: at})
	gh.AddReview(7, testenv.Review{User: "alice", State: "APPROVED", SubmittedAt: at}) // the author: never counts
	gh.AddReview(7, testenv.Review{User: "carol", State: "APPROVED", SubmittedAt: at.Add(time.Hour)})
	gh.AddReview(7, testenv.Review{User: "carol", State: "COMMENTED", SubmittedAt: at.Add(2 * time.Hour)})

	plan := func(now string) (int, rollout.PlanDoc, string) {
		return runPlanJSON(t, "--repo", fixtureFleet, "--github-repo", "acme/fleet-config", "--github-api", gh.URL(), "--allow-insecure", "--pr", "7", "--now", now)
	}
	// Two approvals for a major change, at night: allowed everywhere.
	code, doc, errOut := plan("2026-11-25T23:30:00+08:00")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0; stderr %s; plan %+v", code, errOut, doc)
	}
	users := []string{}
	for _, a := range doc.Change.Approvals {
		users = append(users, a.User+":"+a.Permission)
	}
	if diff := cmp.Diff([]string{"alice:read", "bob:write", "carol:write"}, users); diff != "" {
		t.Errorf("approvals (-want +got):\n%s", diff)
	}
	if doc.Change.Category != "major" || doc.Change.PullRequest == nil || doc.Change.PullRequest.Number != 7 || doc.Change.PullRequest.HeadSHA != head {
		t.Errorf("change = %+v, want major PR #7 at %s", doc.Change, head)
	}
	if n := len(gh.Comments(7)); n != 1 {
		t.Fatalf("%d comments on the pull request, want 1", n)
	}

	// Carol now requests changes: the second plan denies, and the same comment is edited.
	gh.AddReview(7, testenv.Review{User: "carol", State: "CHANGES_REQUESTED", SubmittedAt: at.Add(3 * time.Hour)})
	code, doc, _ = plan("2026-11-25T23:30:00+08:00")
	if code != ExitDeny || doc.Verdict != "deny" {
		t.Fatalf("after changes requested: exit %d verdict %s, want 1 deny", code, doc.Verdict)
	}
	comments := gh.Comments(7)
	if len(comments) != 1 || comments[0].Edits != 1 || !strings.Contains(comments[0].Body, change.PlanMarker) || !strings.Contains(comments[0].Body, "⛔ deny") {
		t.Errorf("comments = %+v, want the one comment edited to show the deny", comments)
	}
	var states []string
	for _, s := range gh.Statuses() {
		if s.SHA != head || s.Context != "convoy/plan" {
			t.Errorf("status %+v, want convoy/plan on %s", s, head)
		}
		states = append(states, s.State)
	}
	if diff := cmp.Diff([]string{"success", "failure"}, states); diff != "" {
		t.Errorf("commit statuses (-want +got):\n%s", diff)
	}
}

// TestPlanGitHubStrangerAndBot: on a public repository anyone may approve;
// a major change approved by one collaborator, a stranger with read access
// and an app is denied, the message naming who did not count and why.
func TestPlanGitHubStrangerAndBot(t *testing.T) {
	gh := testenv.NewFakeGitHub(t)
	t.Setenv("GITHUB_TOKEN", "s3cr3t-token")
	gh.AddCollaborators("write", "bob")
	head := strings.Repeat("ef", 20)
	gh.AddPullRequest(testenv.PR{Number: 8, Title: "Resize", Author: "alice", Labels: []string{"change/major"},
		HeadSHA: head, Body: "## Rollback\nRevert.\n"})
	gh.AddCommit(head, "alice", "Resize", true)
	gh.AddReview(8, testenv.Review{User: "bob", State: "APPROVED"})
	gh.AddReview(8, testenv.Review{User: "mallory", State: "APPROVED"})
	gh.AddReview(8, testenv.Review{User: "renovate[bot]", State: "APPROVED"})
	code, doc, errOut := runPlanJSON(t, "--repo", fixtureFleet, "--github-repo", "acme/fleet-config", "--github-api", gh.URL(), "--allow-insecure", "--pr", "8", "--now", "2026-11-25T23:30:00+08:00")
	if code != ExitDeny {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
	}
	want := "major change needs 2 approvals, has 1 (bob); not counted: mallory: read access, renovate[bot]: app"
	for _, c := range doc.Clusters {
		if len(c.Deny) != 1 || c.Deny[0].Msg != want {
			t.Errorf("cluster %s denies %+v, want %q", c.Name, c.Deny, want)
		}
	}
}

// TestPlanGitHubDown: when GitHub cannot be read, every cluster is held
// (never allowed) and the reason is in the plan.
func TestPlanGitHubDown(t *testing.T) {
	gh := testenv.NewFakeGitHub(t)
	gh.FailNext(1000, 502)
	t.Setenv("GITHUB_TOKEN", "s3cr3t-token")
	code, doc, errOut := runPlanJSON(t, "--repo", fixtureFleet, "--github-repo", "acme/fleet-config", "--github-api", gh.URL(), "--allow-insecure", "--pr", "7", "--now", "2026-11-25T23:30:00+08:00")
	if code != ExitHold || doc.Verdict != "hold" {
		t.Fatalf("exit %d verdict %q, want 3 hold; stderr %s", code, doc.Verdict, errOut)
	}
	for _, c := range doc.Clusters {
		if c.Verdict != "hold" || len(c.Hold) != 1 || !strings.Contains(c.Hold[0].Msg, "502") {
			t.Errorf("cluster %s: %s %+v, want held naming the 502", c.Name, c.Verdict, c.Hold)
		}
	}
	if strings.Contains(errOut, "s3cr3t-token") || strings.Contains(errOut+doc.Clusters[0].Hold[0].Msg, "s3cr3t") {
		t.Error("the token leaked into the output")
	}
}

// TestPlanGitHubTeamsAndCodeOwners: the base's policy data asks a major
// change to production for two approvals from acme/prod-owners, and every
// touched file for an approval of its owners (CODEOWNERS, from the base).
// Team membership comes from GitHub's teams API on the stand-in.
func TestPlanGitHubTeamsAndCodeOwners(t *testing.T) {
	dir := fleetRepo(t)
	edit(t, dir, "fleet.yaml", "    source: trailers\n", "    source: github\n    github: {owner: acme, repo: fleet-config}\n")
	edit(t, dir, "fleet.yaml", "      businessHours:", `      approvers:
      - {categories: [major], environments: [production], teams: [acme/prod-owners], count: 2}
      requireCodeOwners: true
      businessHours:`)
	if err := os.WriteFile(filepath.Join(dir, "CODEOWNERS"), []byte("* @acme/platform\n/clusters/prod-primary/ @acme/prod-owners\n/clusters/prod-edge/ @acme/edge-owners\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := testenv.CommitWorkTree(t, dir, "Separation of duties")

	gh := testenv.NewFakeGitHub(t)
	t.Setenv("GITHUB_TOKEN", "s3cr3t-token")
	gh.AddCollaborators("write", "bob", "carol", "dave", "erin")
	gh.AddTeamMembers("acme/prod-owners", "bob", "carol")
	gh.AddTeamMembers("acme/edge-owners", "erin")
	gh.AddTeamMembers("acme/platform", "dave")
	number := 20
	plan := func(file string, reviewers ...string) (int, rollout.PlanDoc) {
		t.Helper()
		edit(t, dir, file, "resources:", "# reviewed\nresources:")
		head := testenv.CommitWorkTree(t, dir, "Change "+file)
		number++
		gh.AddPullRequest(testenv.PR{Number: number, Title: "change", Author: "alice", Labels: []string{"change/major"},
			HeadSHA: head, BaseSHA: base, Body: "## Rollback\nRevert.\n"})
		gh.AddCommit(head, "alice", "change", true)
		for _, r := range reviewers {
			gh.AddReview(number, testenv.Review{User: r, State: "APPROVED"})
		}
		code, doc, errOut := runPlanJSON(t, "--repo", dir, "--revision", head, "--github-repo", "acme/fleet-config", "--github-api", gh.URL(), "--allow-insecure",
			"--pr", fmt.Sprint(number), "--now", "2026-11-25T23:30:00+08:00")
		if code == ExitError {
			t.Fatalf("exit 2: %s", errOut)
		}
		// (Each pull request's head builds on the one before; its diff
		// from the base holds theirs too, which earlier cases approved.)
		return code, doc
	}
	denies := func(doc rollout.PlanDoc, cluster string) string {
		for _, c := range doc.Clusters {
			if c.Name == cluster {
				return strings.Join(messageTexts(c.Deny), "\n")
			}
		}
		return "no cluster " + cluster
	}

	if code, doc := plan("clusters/prod-primary/kustomization.yaml", "bob", "carol"); code != ExitOK {
		t.Errorf("two prod-owners: exit %d, want 0:\n%s", code, denies(doc, "prod-primary"))
	}
	code, doc := plan("clusters/prod-primary/kustomization.yaml", "bob", "dave")
	if want := "major change to production cluster prod-primary needs 2 approvals from acme/prod-owners, has 1 (bob)"; code != ExitDeny || !strings.Contains(denies(doc, "prod-primary"), want) {
		t.Errorf("a prod-owner and another writer: exit %d, want a deny %q:\n%s", code, want, denies(doc, "prod-primary"))
	}
	if d := denies(doc, "staging"); strings.Contains(d, "prod-owners") {
		t.Errorf("the production rule denies staging:\n%s", d)
	}
	code, doc = plan("clusters/prod-edge/kustomization.yaml", "bob", "carol")
	if want := "clusters/prod-edge/kustomization.yaml is owned by @acme/edge-owners (CODEOWNERS): none of them approved"; code != ExitDeny || !strings.Contains(denies(doc, "staging"), want) {
		t.Errorf("a file whose owners did not approve: exit %d, want a deny %q:\n%s", code, want, denies(doc, "staging"))
	}
}
