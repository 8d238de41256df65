package trust_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/testenv"
	"github.com/convoy-gitops/convoy/internal/trust"
)

const fleetYAML = `apiVersion: convoy.dev/v1alpha1
kind: Fleet
metadata:
  name: shop
spec:
  timezone: UTC
  clusters:
  - {name: staging, environment: staging, path: clusters/staging, kubeconfig: {context: staging}, capacity: {cpu: "4"}}
  - {name: prod, environment: production, path: clusters/prod, kubeconfig: {context: prod}, capacity: {cpu: "8"}}
  rollout:
    waves:
    - {name: canary, clusters: [staging]}
    - {name: main, clusters: [prod]}
  windows:
  - {name: freeze, kind: deny, schedule: "0 9 * * 1-5", duration: 9h, environments: [production]}
  change:
    source: trailers
  policy:
    data:
      approvals: {major: 2}
`

// repo is a config repository with one commit; commit adds more.
type repo struct {
	t   testing.TB
	dir string
}

func newRepo(t testing.TB) *repo {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{
		"fleet.yaml":                          fleetYAML,
		"clusters/staging/kustomization.yaml": "resources: [app.yaml]\n",
		"clusters/staging/app.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {v: \"1\"}\n",
		"clusters/prod/kustomization.yaml":    "resources: [app.yaml]\n",
		"clusters/prod/app.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {v: \"1\"}\n",
		"CODEOWNERS":                          "* @acme/platform\nclusters/prod/ @acme/prod-owners\n",
	}
	for p, c := range files {
		write(t, filepath.Join(src, p), c)
	}
	dir, _ := testenv.FixtureRepo(t, src)
	return &repo{t: t, dir: dir}
}

func write(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// commit writes files (path → content; "" removes) and commits with message.
func (r *repo) commit(message string, files map[string]string) string {
	r.t.Helper()
	for p, c := range files {
		if c == "" {
			os.Remove(filepath.Join(r.dir, p))
			continue
		}
		write(r.t, filepath.Join(r.dir, p), c)
	}
	return testenv.CommitWorkTree(r.t, r.dir, message)
}

func (r *repo) head() string {
	r.t.Helper()
	h, err := source.OpenLocal(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	rev, err := h.Resolve("HEAD")
	if err != nil {
		r.t.Fatal(err)
	}
	return rev
}

// judge returns a Judge of r's history reading trailers, and the target's rules.
func (r *repo) judge(target string) (*trust.Judge, *trust.Rules) {
	r.t.Helper()
	return r.judgeIn(target, r.t.TempDir())
}

// judgeIn is judge with snapshots in snaps.
func (r *repo) judgeIn(target, snaps string) (*trust.Judge, *trust.Rules) {
	r.t.Helper()
	h, err := source.OpenLocal(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	snap, err := h.Snapshot(context.Background(), target, snaps)
	if err != nil {
		r.t.Fatal(err)
	}
	rules, err := trust.Load(trust.OriginBase, target, snap.Dir)
	if err != nil {
		r.t.Fatal(err)
	}
	read := func(_ context.Context, sha string) (string, string, error) {
		c, err := h.Commit(sha)
		return c.Message, c.Author + " <" + c.Email + ">", err
	}
	return &trust.Judge{History: h, Changes: change.NewTrailers(read), SnapshotDir: snaps}, rules
}

const approved2 = "\n\nChange-Category: major\nApproved-by: bob\nApproved-by: carol\n"

// Every commit between the base and the target is judged: the range's
// category is the strictest, each commit keeps its own approvals, files
// and edits of the rules, and the rules are the base's.
func TestJudgeCarriesEveryCommit(t *testing.T) {
	r := newRepo(t)
	base := r.head()
	major := r.commit("Bigger app\n\n## Rollback\nrevert"+approved2, map[string]string{"clusters/prod/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {v: \"2\"}\n"})
	loosen := r.commit("Loosen approvals\n\nChange-Category: standard\nApproved-by: bob\n",
		map[string]string{"fleet.yaml": strings.Replace(fleetYAML, "major: 2", "major: 0", 1), "policies/extra.rego": "package convoy.extra\n"})
	j, targetRules := r.judge(loosen)
	b, err := j.For(context.Background(), base, loosen, targetRules)
	if err != nil {
		t.Fatal(err)
	}
	if b.ChangeErr != nil {
		t.Fatal(b.ChangeErr)
	}
	ch := b.Change
	if ch.Category != change.Major || ch.Revision != loosen || ch.PreviousRevision != base {
		t.Errorf("change %s %s since %s, want major %s since %s", ch.Category, ch.Revision, ch.PreviousRevision, loosen, base)
	}
	var got []string
	for _, c := range ch.Commits {
		got = append(got, c.Category+" "+c.Revision[:7]+" "+strings.Join(c.Governance, ","))
	}
	want := []string{"standard " + loosen[:7] + " policies/extra.rego,spec.policy.data", "major " + major[:7] + " "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"policies/extra.rego", "spec.policy.data"}, ch.Governance); diff != "" {
		t.Errorf("governance (-want +got):\n%s", diff)
	}
	// The rules are the base's: the loosened count does not judge itself.
	if got := b.Rules.Fleet.PolicyData["approvals"]; cmp.Diff(map[string]any{"major": int64(2)}, got) != "" {
		t.Errorf("rules' approvals = %v, want the base's major: 2", got)
	}
	if b.Rules.Origin != trust.OriginBase || b.Rules.Revision != base || b.Rules.PolicyDir != "" {
		t.Errorf("rules = %s at %s with policies %q, want the base's, without policies/", b.Rules.Origin, b.Rules.Revision, b.Rules.PolicyDir)
	}
	// Files carry their owners under the base's CODEOWNERS.
	files := map[string][]string{}
	for _, f := range ch.Commits[1].Files {
		files[f.Path] = f.Owners
	}
	if diff := cmp.Diff(map[string][]string{"clusters/prod/app.yaml": {"@acme/prod-owners"}}, files); diff != "" {
		t.Errorf("files of the major commit (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"acme/platform", "acme/prod-owners"}, b.Rules.Teams()); diff != "" {
		t.Errorf("teams (-want +got):\n%s", diff)
	}
}

func TestEditsOfTheRules(t *testing.T) {
	r := newRepo(t)
	base := r.head()
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"an image is no rule", map[string]string{"clusters/staging/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {v: \"9\"}\n"}, nil},
		{"environment and capacity", map[string]string{"fleet.yaml": strings.NewReplacer("environment: staging", "environment: production", `cpu: "8"`, `cpu: "800"`).Replace(fleetYAML)},
			[]string{"spec.clusters[prod].capacity", "spec.clusters[staging].environment"}},
		{"windows and time zone", map[string]string{"fleet.yaml": strings.NewReplacer("duration: 9h", "duration: 1m", "timezone: UTC", "timezone: Pacific/Kiritimati").Replace(fleetYAML)},
			[]string{"spec.timezone", "spec.windows"}},
		{"change source", map[string]string{"fleet.yaml": strings.Replace(fleetYAML, "source: trailers", "source: github\n    github: {owner: a, repo: b}", 1)}, []string{"spec.change"}},
		{"CODEOWNERS", map[string]string{"CODEOWNERS": "* @mallory\n"}, []string{"CODEOWNERS"}},
		{"a broken fleet.yaml", map[string]string{"fleet.yaml": "kind: [\n"}, []string{"fleet.yaml"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, baseRules := r.judge(base)
			sha := r.commit(tt.name, tt.files)
			// (The target's own rules, which a broken fleet.yaml would not
			// load, are not what this measures: each commit's edits are.)
			j, _ := r.judge(base)
			b, err := j.For(context.Background(), base, sha, baseRules)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if len(b.Change.Commits) > 0 {
				got = b.Change.Commits[0].Governance
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("edits (-want +got):\n%s", diff)
			}
			// Undo for the next case.
			r.commit("undo "+tt.name, map[string]string{"fleet.yaml": fleetYAML, "CODEOWNERS": "* @acme/platform\nclusters/prod/ @acme/prod-owners\n",
				"clusters/staging/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {v: \"1\"}\n"})
			base = r.head()
		})
	}
}

// At bootstrap (nothing applied yet) the target's own rules judge it, and
// say so; when a cluster runs the target already, nothing is carried that
// could edit the rules.
func TestBootstrapAndUpToDate(t *testing.T) {
	r := newRepo(t)
	head := r.head()
	j, rules := r.judge(head)
	b, err := j.For(context.Background(), "", head, rules)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rules.Origin != trust.OriginBootstrap || len(b.Change.Governance) != 0 || len(b.Change.Commits) != 1 {
		t.Errorf("bootstrap basis = %s, governance %v, %d commits; want bootstrap, none, 1", b.Rules.Origin, b.Change.Governance, len(b.Change.Commits))
	}
	b, err = j.For(context.Background(), head, head, rules)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rules.Origin != trust.OriginBase || len(b.Change.Commits[0].Governance) != 0 {
		t.Errorf("up to date: %s, governance %v; want base, none", b.Rules.Origin, b.Change.Commits[0].Governance)
	}
}

// Rules are read from regular files only: a symbolic link in policies/ (to
// /dev/zero, say) is refused, naming it.
func TestSymlinkedRuleFileRefused(t *testing.T) {
	r := newRepo(t)
	if err := os.MkdirAll(filepath.Join(r.dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(r.dir, "policies", "zero.rego")); err != nil {
		t.Fatal(err)
	}
	_, err := trust.Load(trust.OriginBase, "", r.dir)
	if err == nil || !strings.Contains(err.Error(), "policies/zero.rego: not a regular file") {
		t.Errorf("error = %v, want the link refused", err)
	}
}
