package testenv_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/testenv"
)

// writeTree makes a directory with a regular file, an executable, a nested
// file and a symlink.
func writeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "clusters", "staging"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte("kind: Fleet\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "hook.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "clusters", "staging", "kustomization.yaml"), []byte("resources: []\n"), 0o644))
	must(t, os.Symlink("clusters/staging", filepath.Join(dir, "current")))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fileAt reads path at revision from a go-git repository.
func fileAt(t *testing.T, repo *git.Repository, revision, path string) (string, filemode.FileMode) {
	t.Helper()
	c, err := repo.CommitObject(plumbing.NewHash(revision))
	if err != nil {
		t.Fatalf("commit %s: %v", revision, err)
	}
	f, err := c.File(path)
	if err != nil {
		t.Fatalf("%s at %s: %v", path, revision, err)
	}
	content, err := f.Contents()
	if err != nil {
		t.Fatal(err)
	}
	return content, f.Mode
}

// TestGitServerRoundTrip is issue 2's acceptance test for the git server: a
// repo created from a directory, a commit, a clone with go-git over HTTP, and
// each file read at the revision it was written in.
func TestGitServerRoundTrip(t *testing.T) {
	srv := testenv.NewGitServer(t)
	repo := srv.CreateRepo(t, "acme/fleet", writeTree(t))
	first := repo.Head(t)
	second := repo.Commit(t, "bump staging", map[string]string{
		"clusters/staging/kustomization.yaml": "resources: [deploy.yaml]\n",
		"hook.sh":                             testenv.Deleted,
	})
	if second == first || len(second) != 40 {
		t.Fatalf("Commit returned %q after %q, want a new 40-hex SHA", second, first)
	}
	if got := repo.Head(t); got != second {
		t.Fatalf("served head = %s, want %s", got, second)
	}

	cloned, err := git.Clone(memory.NewStorage(), nil, &git.CloneOptions{URL: srv.URL("acme/fleet")})
	if err != nil {
		t.Fatalf("clone %s: %v", srv.URL("acme/fleet"), err)
	}
	head, err := cloned.Head()
	must(t, err)
	if head.Name() != plumbing.NewBranchReferenceName("main") || head.Hash().String() != second {
		t.Errorf("cloned HEAD = %s %s, want refs/heads/main %s", head.Name(), head.Hash(), second)
	}

	type file struct {
		Content string
		Mode    filemode.FileMode
	}
	read := func(rev, path string) file {
		c, m := fileAt(t, cloned, rev, path)
		return file{c, m}
	}
	want := map[string]file{
		"fleet.yaml":                          {"kind: Fleet\n", filemode.Regular},
		"hook.sh":                             {"#!/bin/sh\n", filemode.Executable},
		"current":                             {"clusters/staging", filemode.Symlink},
		"clusters/staging/kustomization.yaml": {"resources: []\n", filemode.Regular},
	}
	for path, w := range want {
		if diff := cmp.Diff(w, read(first, path)); diff != "" {
			t.Errorf("%s at first commit (-want +got):\n%s", path, diff)
		}
	}
	if diff := cmp.Diff(file{"resources: [deploy.yaml]\n", filemode.Regular},
		read(second, "clusters/staging/kustomization.yaml")); diff != "" {
		t.Errorf("kustomization at second commit (-want +got):\n%s", diff)
	}
	c, err := cloned.CommitObject(plumbing.NewHash(second))
	must(t, err)
	if _, err := c.File("hook.sh"); !errors.Is(err, object.ErrFileNotFound) {
		t.Errorf("hook.sh at second commit: err = %v, want it deleted", err)
	}
	if c.Message != "bump staging\n" || c.Author.Name != "Convoy Test" {
		t.Errorf("commit = %q by %q, want %q by %q", c.Message, c.Author.Name, "bump staging\n", "Convoy Test")
	}
}

// TestGitServerPushOverHTTP shows receive-pack is exported: a go-git push
// lands, and a later Repo.Commit builds on it.
func TestGitServerPushOverHTTP(t *testing.T) {
	srv := testenv.NewGitServer(t)
	repo := srv.CreateRepo(t, "fleet", writeTree(t))
	cloned, err := git.Clone(memory.NewStorage(), memfs.New(), &git.CloneOptions{URL: repo.URL})
	must(t, err)
	wt, err := cloned.Worktree()
	must(t, err)
	f, err := wt.Filesystem.Create("pushed.txt")
	must(t, err)
	_, err = f.Write([]byte("over http\n"))
	must(t, err)
	must(t, f.Close())
	_, err = wt.Add("pushed.txt")
	must(t, err)
	sig := &object.Signature{Name: "Pusher", Email: "p@convoy.invalid", When: time.Unix(1767600000, 0)}
	pushed, err := wt.Commit("pushed over http", &git.CommitOptions{Author: sig, Committer: sig})
	must(t, err)
	must(t, cloned.Push(&git.PushOptions{}))
	if got := repo.Head(t); got != pushed.String() {
		t.Fatalf("served head after push = %s, want %s", got, pushed)
	}
	if n := srv.Requests().ReceivePack; n < 2 {
		t.Errorf("ReceivePack requests = %d, want at least 2 (advertisement and push)", n)
	}

	next := repo.Commit(t, "on top", map[string]string{"later.txt": "x"})
	content, _ := fileAt(t, reclone(t, repo.URL), next, "pushed.txt")
	if content != "over http\n" {
		t.Errorf("pushed.txt after Repo.Commit = %q, want the pushed content kept", content)
	}
}

func reclone(t *testing.T, url string) *git.Repository {
	t.Helper()
	r, err := git.Clone(memory.NewStorage(), nil, &git.CloneOptions{URL: url})
	if err != nil {
		t.Fatalf("clone %s: %v", url, err)
	}
	return r
}

func TestGitServerRequestCounts(t *testing.T) {
	srv := testenv.NewGitServer(t)
	repo := srv.CreateRepo(t, "fleet", writeTree(t))

	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{repo.URL}})
	_, err := remote.List(&git.ListOptions{})
	must(t, err)
	if diff := cmp.Diff(testenv.GitRequests{InfoRefs: 1}, srv.Requests()); diff != "" {
		t.Errorf("after ls-remote (-want +got):\n%s", diff)
	}
	srv.ResetRequests()
	reclone(t, repo.URL)
	if got := srv.Requests(); got.InfoRefs != 1 || got.UploadPack < 1 {
		t.Errorf("after clone = %+v, want 1 InfoRefs and at least 1 UploadPack", got)
	}
}

func TestGitServerBasicAuth(t *testing.T) {
	srv := testenv.NewGitServer(t)
	repo := srv.CreateRepo(t, "private", writeTree(t))
	srv.RequireBasicAuth("robot", "s3cret")

	tests := []struct {
		name    string
		auth    *githttp.BasicAuth
		wantErr error
	}{
		{"no credentials", nil, transport.ErrAuthenticationRequired},
		{"wrong password", &githttp.BasicAuth{Username: "robot", Password: "nope"}, transport.ErrAuthenticationRequired},
		{"right credentials", &githttp.BasicAuth{Username: "robot", Password: "s3cret"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &git.CloneOptions{URL: repo.URL}
			if tt.auth != nil {
				opts.Auth = tt.auth
			}
			_, err := git.Clone(memory.NewStorage(), nil, opts)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("clone err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestGitServerFailingAndLatency(t *testing.T) {
	srv := testenv.NewGitServer(t)
	repo := srv.CreateRepo(t, "fleet", "")
	srv.SetFailing(http.StatusServiceUnavailable)
	_, err := git.Clone(memory.NewStorage(), nil, &git.CloneOptions{URL: repo.URL})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("clone of a failing server: err = %v, want status 503", err)
	}
	srv.SetFailing(0)
	srv.SetLatency(100 * time.Millisecond)
	start := time.Now()
	reclone(t, repo.URL)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("clone with 100ms latency per request took %v, want at least 200ms (2 requests)", d)
	}
}

// TestFixtureRepo checks that a fixture becomes a repository with the
// fixture's files and the same SHA on every call.
func TestFixtureRepo(t *testing.T) {
	dir := writeTree(t)
	path, sha := testenv.FixtureRepo(t, dir)
	_, again := testenv.FixtureRepo(t, dir)
	if sha != again {
		t.Errorf("FixtureRepo SHA = %s then %s, want deterministic", sha, again)
	}
	r, err := git.PlainOpen(path)
	must(t, err)
	head, err := r.Head()
	must(t, err)
	if head.Hash().String() != sha || head.Name().Short() != "main" {
		t.Errorf("HEAD = %s %s, want main %s", head.Name(), head.Hash(), sha)
	}
	if content, mode := fileAt(t, r, sha, "current"); content != "clusters/staging" || mode != filemode.Symlink {
		t.Errorf("current = %q mode %v, want symlink to clusters/staging", content, mode)
	}
	// file:// works against it too.
	fileRepo := reclone(t, "file://"+path)
	if c, _ := fileAt(t, fileRepo, sha, "fleet.yaml"); c != "kind: Fleet\n" {
		t.Errorf("fleet.yaml over file:// = %q", c)
	}
}
