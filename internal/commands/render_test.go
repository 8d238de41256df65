package commands

import (
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func init() {
	// Other golden tests of this package may define -update too.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

// updateGolden reports whether -update was given.
func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

const fleetFixture = "../../fixtures/fleet"

func TestRenderGolden(t *testing.T) {
	code, out, errOut := run(t, "render", "--repo", fleetFixture, "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	golden := filepath.Join("testdata", "render-fleet.golden.json")
	if updateGolden() {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRenderGolden -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), out); diff != "" {
		t.Errorf("convoy render -o json differs from %s (-want +got):\n%s", golden, diff)
	}
}

func TestRenderJSONShape(t *testing.T) {
	code, out, errOut := run(t, "render", "--repo", fleetFixture, "-o", "json", "--cluster", "dr", "--cluster", "staging")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var doc struct {
		Revision *string `json:"revision"`
		Clusters []struct {
			Name    string           `json:"name"`
			Wave    string           `json:"wave"`
			Objects []map[string]any `json:"objects"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Revision == nil || *doc.Revision != "" {
		t.Errorf("revision = %v, want \"\" (the fixture is not a repository root)", doc.Revision)
	}
	var got []string
	for _, c := range doc.Clusters {
		got = append(got, c.Name+"@"+c.Wave)
		if len(c.Objects) == 0 {
			t.Errorf("cluster %s has no objects", c.Name)
		}
	}
	// Wave order, whatever the order of the flags.
	if diff := cmp.Diff([]string{"staging@canary", "dr@dr"}, got); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
}

func TestRenderYAML(t *testing.T) {
	code, out, errOut := run(t, "render", "--repo", fleetFixture, "--cluster", "prod-edge", "--cluster", "prod-primary")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var headers []string
	docs := strings.Split(out, "---\n")
	for _, d := range docs[1:] {
		if strings.HasPrefix(d, "# cluster: ") {
			headers = append(headers, strings.SplitN(d, "\n", 2)[0])
		}
		if !strings.Contains(d, "\nkind: ") {
			t.Errorf("document without a kind:\n%s", d)
		}
	}
	if docs[0] != "" {
		t.Errorf("output starts with %q, want ---", docs[0])
	}
	if diff := cmp.Diff([]string{"# cluster: prod-primary", "# cluster: prod-edge"}, headers); diff != "" {
		t.Errorf("cluster headers (-want +got):\n%s", diff)
	}
	if n := len(docs) - 1; n != 16 {
		t.Errorf("%d documents, want 16 (8 objects in each cluster)", n)
	}
}

func TestRenderRevision(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, fleetFixture, dir)
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddGlob("."); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1764000000, 0)}
	head, err := wt.Commit("fleet", &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "render", "--repo", dir, "-o", "json", "--cluster", "staging")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var doc struct {
		Revision string `json:"revision"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Revision != head.String() {
		t.Errorf("revision = %q, want HEAD %s", doc.Revision, head)
	}
}

func TestRenderUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown cluster", []string{"--repo", fleetFixture, "--cluster", "staging", "--cluster", "prod-mars", "--cluster", "nope"},
			[]string{"convoy: --cluster prod-mars: no such cluster", "convoy: --cluster nope: no such cluster"}},
		{"no repo", nil, []string{"--repo: required"}},
		{"unreachable remote repo", []string{"--repo", "http://127.0.0.1:1/fleet.git", "--allow-insecure"}, []string{"fetch http://127.0.0.1:1/fleet.git"}},
		{"plain http remote repo", []string{"--repo", "http://127.0.0.1:1/fleet.git"}, []string{"http is not encrypted"}},
		{"bad output", []string{"--repo", fleetFixture, "-o", "xml"}, []string{`--output "xml": expected yaml or json`}},
		{"missing repo", []string{"--repo", filepath.Join(t.TempDir(), "none")}, []string{"not a directory"}},
		{"argument", []string{"--repo", fleetFixture, "extra"}, []string{"extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"render"}, tt.args...)...)
			if code != ExitError || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}

// TestRenderInvalidFixtures runs convoy render on every fixtures/invalid
// directory that has an expect.txt: each must exit 2, print nothing on
// stdout, and name on stderr every line of expect.txt.
func TestRenderInvalidFixtures(t *testing.T) {
	dirs, err := filepath.Glob("../../fixtures/invalid/*/expect.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 8 {
		t.Fatalf("found %d invalid fixtures, want at least the 8 render-* ones", len(dirs))
	}
	for _, expect := range dirs {
		dir := filepath.Dir(expect)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(expect)
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := run(t, "render", "--repo", dir)
			if code != ExitError {
				t.Errorf("exit %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.Contains(errOut, line) {
					t.Errorf("stderr lacks %q:\n%s", line, errOut)
				}
			}
			for _, line := range strings.Split(strings.TrimRight(errOut, "\n"), "\n") {
				if !strings.HasPrefix(line, "convoy: ") {
					t.Errorf("stderr line %q is not one convoy: problem line", line)
				}
			}
		})
	}
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRenderFromGitServer renders fixtures/fleet fetched over the real git
// smart-HTTP server, at the branch head and at an older revision.
func TestRenderFromGitServer(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	srv := testenv.NewGitServer(t)
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	repo := srv.CreateRepo(t, "fleet", filepath.Join(root, "fixtures/fleet"))
	first := repo.Head(t)
	second := repo.Commit(t, "staging gets 3 schedulers", map[string]string{
		"clusters/staging/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../environments/staging\ncomponents:\n- ../../regions/cn-north\nreplicas:\n- name: resource-scheduler\n  count: 3\n",
	})
	replicas := func(rev string) (string, int64) {
		args := []string{"render", "--repo", repo.URL, "--allow-insecure", "--cluster", "staging", "-o", "json"}
		if rev != "" {
			args = append(args, "--revision", rev)
		}
		code, out, errOut := run(t, args...)
		if code != ExitOK {
			t.Fatalf("render %s: exit %d: %s", rev, code, errOut)
		}
		var doc renderOutput
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		for _, o := range doc.Clusters[0].Objects {
			if o["kind"] == "Deployment" {
				n, _ := o["spec"].(map[string]any)["replicas"].(float64)
				return doc.Revision, int64(n)
			}
		}
		t.Fatalf("no Deployment rendered for staging at %s", rev)
		return "", 0
	}
	if rev, n := replicas(""); rev != second || n != 3 {
		t.Errorf("head: revision %s with %d replicas, want %s with 3", rev, n, second)
	}
	if rev, n := replicas(first); rev != first || n != 2 {
		t.Errorf("first commit: revision %s with %d replicas, want %s with 2", rev, n, first)
	}
	if rev, n := replicas("HEAD~1"); rev != first || n != 2 {
		t.Errorf("HEAD~1: revision %s with %d replicas, want %s with 2", rev, n, first)
	}
	// Plain http carries credentials in clear: refused unless asked for.
	if code, _, errOut := run(t, "render", "--repo", repo.URL); code != ExitError || !strings.Contains(errOut, "http is not encrypted") {
		t.Errorf("render over http without --allow-insecure: exit %d: %s", code, errOut)
	}
}
