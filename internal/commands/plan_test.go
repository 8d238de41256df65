package commands

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convoy-gitops/convoy/internal/rollout"

	"github.com/google/go-cmp/cmp"
)

const fixtureFleet = "../../fixtures/fleet"

func runPlanJSON(t *testing.T, args ...string) (int, rollout.PlanDoc, string) {
	t.Helper()
	code, out, errOut := run(t, append([]string{"plan", "-o", "json"}, args...)...)
	var doc rollout.PlanDoc
	if out != "" {
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("plan output is not JSON: %v\n%s", err, out)
		}
	}
	return code, doc, errOut
}

func verdicts(doc rollout.PlanDoc) map[string]string {
	out := map[string]string{}
	for _, c := range doc.Clusters {
		out[c.Name] = string(c.Verdict)
	}
	return out
}

// TestPlanFixtureChanges: the offline plan of fixtures/fleet gives the
// verdicts change management expects, cluster by cluster.
func TestPlanFixtureChanges(t *testing.T) {
	allProd := func(prod, staging string) map[string]string {
		return map[string]string{"staging": staging, "prod-primary": prod, "prod-secondary": prod, "prod-edge": prod, "dr": prod}
	}
	for _, tc := range []struct {
		name, change, now string
		wantCode          int
		want              map[string]string
		wantMsg           string
	}{
		{"approved normal change at night", "normal-approved.json", "2026-11-25T23:30:00+08:00", ExitOK, allProd("allow", "allow"), ""},
		{"major change at 10:00 on a Wednesday", "major-two-approvals.json", "2026-11-25T10:00:00+08:00", ExitHold, allProd("hold", "allow"), "business-hours"},
		{"major change on a Saturday", "major-two-approvals.json", "2026-11-28T10:00:00+08:00", ExitOK, allProd("allow", "allow"), ""},
		{"major change with one approval", "major-one-approval.json", "2026-11-25T23:30:00+08:00", ExitDeny, allProd("deny", "deny"), "needs 2 approvals"},
		{"unreviewed change", "unreviewed.json", "2026-11-25T23:30:00+08:00", ExitDeny, allProd("deny", "allow"), "production"},
		{"emergency during business hours", "emergency.json", "2026-11-25T10:00:00+08:00", ExitOK, allProd("allow", "allow"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, doc, errOut := runPlanJSON(t, "--repo", fixtureFleet, "--change", filepath.Join("../../fixtures/changes", tc.change), "--now", tc.now)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s\nplan: %+v", code, tc.wantCode, errOut, doc)
			}
			if diff := cmp.Diff(tc.want, verdicts(doc)); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
			order := []string{}
			for _, c := range doc.Clusters {
				order = append(order, c.Wave+"/"+c.Name)
			}
			if diff := cmp.Diff([]string{"canary/staging", "primary/prod-primary", "secondary/prod-secondary", "secondary/prod-edge", "dr/dr"}, order); diff != "" {
				t.Errorf("clusters not in wave order (-want +got):\n%s", diff)
			}
			if tc.wantMsg != "" {
				all, _ := json.Marshal(doc.Clusters)
				if !strings.Contains(string(all), tc.wantMsg) {
					t.Errorf("no message mentions %q: %s", tc.wantMsg, all)
				}
			}
			if doc.Change == nil || doc.Change.Category == "" {
				t.Errorf("plan has no change: %+v", doc.Change)
			}
		})
	}
}

// TestPlanQuotaBusting: a replica count beyond a cluster's capacity is
// denied, naming the cluster and the resource.
func TestPlanQuotaBusting(t *testing.T) {
	repo := copyDir(t, fixtureFleet)
	// prod-primary runs the scheduler at 5 × 2 CPU; 60 replicas need 120 CPU of its 100.
	kpath := filepath.Join(repo, "clusters/prod-primary/kustomization.yaml")
	data, err := os.ReadFile(kpath)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, []byte("replicas:\n- name: resource-scheduler\n  count: 60\n")...)
	if err := os.WriteFile(kpath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, doc, errOut := runPlanJSON(t, "--repo", repo, "--change", "../../fixtures/changes/normal-approved.json", "--now", "2026-11-25T23:30:00+08:00")
	if code != ExitDeny {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
	}
	if got := verdicts(doc); got["prod-primary"] != "deny" || got["staging"] != "allow" || got["prod-secondary"] != "allow" {
		t.Errorf("verdicts = %v, want only prod-primary denied", got)
	}
	var msgs []string
	for _, c := range doc.Clusters {
		for _, m := range c.Deny {
			msgs = append(msgs, m.Msg)
		}
	}
	joined := strings.Join(msgs, "\n")
	if !strings.Contains(joined, "prod-primary") || !strings.Contains(joined, "cpu") {
		t.Errorf("deny messages %q do not name the cluster and resource", joined)
	}
}

func TestPlanBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no change", []string{"--repo", fixtureFleet}, "--change"},
		{"bad now", []string{"--repo", fixtureFleet, "--change", "../../fixtures/changes/normal-approved.json", "--now", "tomorrow"}, "--now"},
		{"broken repo", []string{"--repo", "../../fixtures/invalid/fleet-bad-cron", "--change", "../../fixtures/changes/normal-approved.json"}, "fleet.yaml:"},
		{"bad output", []string{"--repo", fixtureFleet, "-o", "xml"}, "--output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"plan"}, tc.args...)...)
			if code != ExitError || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, a message naming %q", code, out, errOut, tc.want)
			}
		})
	}
}

func TestPlanMarkdown(t *testing.T) {
	code, out, _ := run(t, "plan", "-o", "markdown", "--repo", fixtureFleet, "--change", "../../fixtures/changes/major-two-approvals.json", "--now", "2026-11-25T10:00:00+08:00")
	if code != ExitHold {
		t.Fatalf("exit %d, want 3", code)
	}
	for _, want := range []string{"| canary | staging | ✅ allow |", "| primary | prod-primary | ⏸️ hold |", "@bob", "hold: "} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

// copyDir copies a fixture repo into a temp dir so a test can change it.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
