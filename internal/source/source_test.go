package source_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// configTree is the first commit of every test repository.
func configTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string, perm os.FileMode) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), perm))
	}
	write("fleet.yaml", "kind: Fleet\n", 0o644)
	write("clusters/staging/kustomization.yaml", "resources: [deploy.yaml]\n", 0o644)
	write("scripts/check.sh", "#!/bin/sh\nexit 0\n", 0o755)
	must(t, os.Symlink("clusters/staging", filepath.Join(dir, "current")))
	must(t, os.Symlink("../../../etc/passwd", filepath.Join(dir, "clusters", "escape")))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// listDir describes every entry under dir: "<perm> <content>" for files,
// "-> <target>" for symlinks.
func listDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			got[filepath.ToSlash(rel)] = "-> " + target
			return err
		}
		data, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = fmt.Sprintf("%v %s", info.Mode().Perm(), data)
		return err
	})
	must(t, err)
	return got
}

var firstTree = map[string]string{
	"fleet.yaml":                          "-rw-r--r-- kind: Fleet\n",
	"clusters/staging/kustomization.yaml": "-rw-r--r-- resources: [deploy.yaml]\n",
	"clusters/escape":                     "-> ../../../etc/passwd",
	"scripts/check.sh":                    "-rwxr-xr-x #!/bin/sh\nexit 0\n",
	"current":                             "-> clusters/staging",
}

type fixture struct {
	srv  *testenv.GitServer
	repo *testenv.Repo
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	srv := testenv.NewGitServer(t)
	return fixture{srv: srv, repo: srv.CreateRepo(t, "acme/fleet", configTree(t))}
}

func newSource(t *testing.T, opts source.Options) *source.Source {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	s, err := source.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestFetchWritesRevisionTree(t *testing.T) {
	f := newFixture(t)
	cache := t.TempDir()
	s := newSource(t, source.Options{URL: f.repo.URL, CacheDir: cache})

	snap, err := s.Fetch(context.Background(), "")
	must(t, err)
	head := f.repo.Head(t)
	if !strings.HasPrefix(snap.Commit.Message, "initial content") {
		t.Errorf("commit message = %q, want the first commit's", snap.Commit.Message)
	}
	want := &source.Snapshot{
		Revision: head,
		Dir:      filepath.Join(cache, head),
		Commit: source.Commit{
			Author:  "Convoy Test",
			Email:   "test@convoy.invalid",
			Message: snap.Commit.Message,
			Time:    time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC),
		},
	}
	if diff := cmp.Diff(want, snap, cmp.Comparer(time.Time.Equal)); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(firstTree, listDir(t, snap.Dir)); diff != "" {
		t.Errorf("snapshot tree (-want +got):\n%s", diff)
	}
	entries, err := os.ReadDir(cache)
	must(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("leftover temporary entry %s in the cache", e.Name())
		}
	}
}

func TestFetchSeesNewCommit(t *testing.T) {
	f := newFixture(t)
	s := newSource(t, source.Options{URL: f.repo.URL})
	first, err := s.Fetch(context.Background(), "")
	must(t, err)

	second := f.repo.Commit(t, "scale staging", map[string]string{
		"clusters/staging/kustomization.yaml": "resources: [deploy.yaml, hpa.yaml]\n",
		"scripts/check.sh":                    testenv.Deleted,
	})
	snap, err := s.Fetch(context.Background(), first.Revision)
	must(t, err)
	if snap.Revision != second || snap.Unchanged {
		t.Fatalf("Fetch after a commit = %s (unchanged %v), want %s", snap.Revision, snap.Unchanged, second)
	}
	if snap.Commit.Message != "scale staging\n" || len(snap.Commit.Parents) != 1 || snap.Commit.Parents[0] != first.Revision {
		t.Errorf("commit = %q parents %v, want %q with parent %s", snap.Commit.Message, snap.Commit.Parents, "scale staging\n", first.Revision)
	}
	want := map[string]string{}
	for k, v := range firstTree {
		want[k] = v
	}
	want["clusters/staging/kustomization.yaml"] = "-rw-r--r-- resources: [deploy.yaml, hpa.yaml]\n"
	delete(want, "scripts/check.sh")
	if diff := cmp.Diff(want, listDir(t, snap.Dir)); diff != "" {
		t.Errorf("second snapshot (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(firstTree, listDir(t, first.Dir)); diff != "" {
		t.Errorf("first snapshot changed (-want +got):\n%s", diff)
	}
}

// TestFetchUnchangedHeadFetchesNothing asserts on the server's counters that
// an unchanged branch costs one ref listing and no upload-pack.
func TestFetchUnchangedHeadFetchesNothing(t *testing.T) {
	f := newFixture(t)
	s := newSource(t, source.Options{URL: f.repo.URL})
	first, err := s.Fetch(context.Background(), "")
	must(t, err)
	if n := f.srv.Requests().UploadPack; n == 0 {
		t.Fatalf("first Fetch made no upload-pack request; the counter cannot be trusted")
	}

	f.srv.ResetRequests()
	snap, err := s.Fetch(context.Background(), first.Revision)
	must(t, err)
	want := &source.Snapshot{Revision: first.Revision, Dir: first.Dir, Unchanged: true}
	if diff := cmp.Diff(want, snap); diff != "" {
		t.Errorf("unchanged snapshot (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(testenv.GitRequests{InfoRefs: 1}, f.srv.Requests()); diff != "" {
		t.Errorf("requests for an unchanged head (-want +got):\n%s", diff)
	}
}

// TestFetchReusesCachedSnapshot: a new Source (an agent restart) on the same
// cache finds the head's snapshot and its commit without fetching.
func TestFetchReusesCachedSnapshot(t *testing.T) {
	f := newFixture(t)
	cache := t.TempDir()
	first, err := newSource(t, source.Options{URL: f.repo.URL, CacheDir: cache}).Fetch(context.Background(), "")
	must(t, err)

	f.srv.ResetRequests()
	again, err := newSource(t, source.Options{URL: f.repo.URL, CacheDir: cache}).Fetch(context.Background(), "")
	must(t, err)
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("snapshot from the cache (-want +got):\n%s", diff)
	}
	if n := f.srv.Requests().UploadPack; n != 0 {
		t.Errorf("upload-pack requests = %d, want 0 for a cached revision", n)
	}
}

func TestFetchPinnedRevision(t *testing.T) {
	f := newFixture(t)
	first := f.repo.Head(t)
	second := f.repo.Commit(t, "second", map[string]string{"fleet.yaml": "kind: Fleet # 2\n"})
	f.repo.Git(t, "tag", "--annotate", "v2", "--message", "release 2")
	f.repo.Git(t, "push", "--quiet", "origin", "v2")
	third := f.repo.Commit(t, "third", map[string]string{"fleet.yaml": "kind: Fleet # 3\n"})
	f.repo.Git(t, "branch", "hotfix", second)
	f.repo.Git(t, "push", "--quiet", "origin", "hotfix")

	tests := []struct {
		revision, want, fleet string
	}{
		{first, first, "kind: Fleet\n"}, // older than the head: full history of main
		{second, second, "kind: Fleet # 2\n"},
		{third, third, "kind: Fleet # 3\n"},
		{"v2", second, "kind: Fleet # 2\n"}, // annotated tag, peeled
		{"refs/tags/v2", second, "kind: Fleet # 2\n"},
		{"hotfix", second, "kind: Fleet # 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.revision, func(t *testing.T) {
			s := newSource(t, source.Options{URL: f.repo.URL, Revision: tt.revision})
			snap, err := s.Fetch(context.Background(), "")
			must(t, err)
			if snap.Revision != tt.want {
				t.Errorf("Revision = %s, want %s", snap.Revision, tt.want)
			}
			data, err := os.ReadFile(filepath.Join(snap.Dir, "fleet.yaml"))
			must(t, err)
			if string(data) != tt.fleet {
				t.Errorf("fleet.yaml = %q, want %q", data, tt.fleet)
			}
		})
	}

	for _, missing := range []string{strings.Repeat("a", 40), "v9", "abc1234"} {
		s := newSource(t, source.Options{URL: f.repo.URL, Revision: missing})
		if _, err := s.Fetch(context.Background(), ""); !errors.Is(err, source.ErrNotFound) {
			t.Errorf("Fetch of revision %s: err = %v, want ErrNotFound", missing, err)
		}
	}
	s := newSource(t, source.Options{URL: f.repo.URL, Branch: "nope"})
	if _, err := s.Fetch(context.Background(), ""); !errors.Is(err, source.ErrNotFound) || !strings.Contains(err.Error(), "branch nope") {
		t.Errorf("Fetch of a missing branch: err = %v, want ErrNotFound naming the branch", err)
	}
}

func TestFetchBasicAuth(t *testing.T) {
	const secret, token = "s3cret-Passw0rd", "ghp_tok3nValue"
	f := newFixture(t)
	f.srv.RequireBasicAuth("robot", secret)
	withUser := strings.Replace(f.repo.URL, "http://", "http://robot:"+secret+"@", 1)
	wrongUser := strings.Replace(f.repo.URL, "http://", "http://robot:"+token+"@", 1)
	tokenUser := strings.Replace(f.repo.URL, "http://", "http://"+token+"@", 1)

	tests := []struct {
		name    string
		url     string
		auth    source.Auth
		wantErr error
	}{
		{"username and password", f.repo.URL, source.Auth{Username: "robot", Password: secret}, nil},
		{"token as password", f.repo.URL, source.Auth{Username: "robot", Token: secret}, nil},
		{"credentials in the URL", withUser, source.Auth{}, nil},
		{"no credentials", f.repo.URL, source.Auth{}, source.ErrAuth},
		{"wrong password", f.repo.URL, source.Auth{Username: "robot", Password: token}, source.ErrAuth},
		{"wrong token", f.repo.URL, source.Auth{Token: token}, source.ErrAuth},
		{"wrong password in the URL", wrongUser, source.Auth{}, source.ErrAuth},
		{"token as URL user", tokenUser, source.Auth{}, source.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSource(t, source.Options{URL: tt.url, Auth: tt.auth})
			snap, err := s.Fetch(context.Background(), "")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Fetch err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				t.Logf("error: %v", err)
				for _, sec := range []string{secret, token} {
					if strings.Contains(err.Error(), sec) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), sec) {
						t.Errorf("error %q contains a credential", err)
					}
				}
				if want := "fetch " + source.RedactURL(tt.url) + ": "; !strings.HasPrefix(err.Error(), want) {
					t.Errorf("error %q does not start with %q", err, want)
				}
				return
			}
			if snap.Revision != f.repo.Head(t) {
				t.Errorf("Revision = %s, want %s", snap.Revision, f.repo.Head(t))
			}
		})
	}
}

func TestFetchLocalRepository(t *testing.T) {
	path, sha := testenv.FixtureRepo(t, configTree(t))
	for _, url := range []string{"file://" + path, path} {
		t.Run(url, func(t *testing.T) {
			s := newSource(t, source.Options{URL: url})
			snap, err := s.Fetch(context.Background(), "")
			must(t, err)
			if snap.Revision != sha {
				t.Errorf("Revision = %s, want %s", snap.Revision, sha)
			}
			if diff := cmp.Diff(firstTree, listDir(t, snap.Dir)); diff != "" {
				t.Errorf("snapshot tree (-want +got):\n%s", diff)
			}
			again, err := s.Fetch(context.Background(), sha)
			must(t, err)
			if !again.Unchanged {
				t.Errorf("second Fetch = %+v, want Unchanged", again)
			}
		})
	}
	s := newSource(t, source.Options{URL: "file://" + t.TempDir()})
	if _, err := s.Fetch(context.Background(), ""); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("Fetch of a directory that is no repository: err = %v, want ErrNotFound", err)
	}
}

func TestFetchServerFailures(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		code    int
		wantErr error
	}{
		{http.StatusInternalServerError, source.ErrUnreachable},
		{http.StatusBadGateway, source.ErrUnreachable},
		{http.StatusServiceUnavailable, source.ErrUnreachable},
		{http.StatusTooManyRequests, source.ErrUnreachable},
		{http.StatusUnauthorized, source.ErrAuth},
		{http.StatusForbidden, source.ErrAuth},
		{http.StatusNotFound, source.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			f.srv.SetFailing(tt.code)
			defer f.srv.SetFailing(0)
			_, err := newSource(t, source.Options{URL: f.repo.URL}).Fetch(context.Background(), "")
			t.Logf("error: %v", err)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Fetch from a server answering %d: err = %v, want %v", tt.code, err, tt.wantErr)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		addr := l.Addr().String()
		must(t, l.Close())
		_, err = newSource(t, source.Options{URL: "http://" + addr + "/fleet.git"}).Fetch(context.Background(), "")
		if !errors.Is(err, source.ErrUnreachable) {
			t.Errorf("Fetch from a closed port: err = %v, want ErrUnreachable", err)
		}
	})
}

func TestFetchCancellation(t *testing.T) {
	f := newFixture(t)
	f.srv.SetLatency(time.Minute)
	t.Run("context canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := newSource(t, source.Options{URL: f.repo.URL}).Fetch(ctx, "")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Fetch returned %v after cancellation", d)
		}
		if !errors.Is(err, context.Canceled) || errors.Is(err, source.ErrUnreachable) {
			t.Errorf("err = %v, want context.Canceled and not ErrUnreachable", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		_, err := newSource(t, source.Options{URL: f.repo.URL, Timeout: 200 * time.Millisecond}).Fetch(context.Background(), "")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Fetch returned after %v with a 200ms timeout", d)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, source.ErrUnreachable) {
			t.Errorf("err = %v, want DeadlineExceeded and ErrUnreachable", err)
		}
	})
}

// TestFetchConcurrent runs four Fetches of the same revision into one cache,
// from four Sources as well as one, and expects one complete snapshot.
func TestFetchConcurrent(t *testing.T) {
	f := newFixture(t)
	cache := t.TempDir()
	shared := newSource(t, source.Options{URL: f.repo.URL, CacheDir: cache})
	var wg sync.WaitGroup
	snaps := make([]*source.Snapshot, 8)
	errs := make([]error, 8)
	for i := range snaps {
		s := shared
		if i%2 == 1 {
			s = newSource(t, source.Options{URL: f.repo.URL, CacheDir: cache})
		}
		wg.Go(func() { snaps[i], errs[i] = s.Fetch(context.Background(), "") })
	}
	wg.Wait()
	for i := range snaps {
		must(t, errs[i])
		if diff := cmp.Diff(snaps[0], snaps[i]); diff != "" {
			t.Errorf("snapshot %d differs from snapshot 0 (-want +got):\n%s", i, diff)
		}
	}
	if diff := cmp.Diff(firstTree, listDir(t, snaps[0].Dir)); diff != "" {
		t.Errorf("snapshot tree (-want +got):\n%s", diff)
	}
	entries, err := os.ReadDir(cache)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{snaps[0].Revision, snaps[0].Revision + ".commit"}; !cmp.Equal(want, names) {
		t.Errorf("cache entries = %v, want %v", names, want)
	}
}

func TestPrune(t *testing.T) {
	f := newFixture(t)
	cache := t.TempDir()
	s := newSource(t, source.Options{URL: f.repo.URL, CacheDir: cache})
	first, err := s.Fetch(context.Background(), "")
	must(t, err)
	f.repo.Commit(t, "next", map[string]string{"x": "y"})
	second, err := s.Fetch(context.Background(), first.Revision)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(cache, "README"), nil, 0o644))

	must(t, s.Prune(second.Revision))
	entries, err := os.ReadDir(cache)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{second.Revision, second.Revision + ".commit", "README"}; !cmp.Equal(want, names) {
		t.Errorf("cache after Prune = %v, want %v", names, want)
	}
}

// signedCommit clones url over HTTP, commits a file signed with key (unsigned
// when nil) and pushes it; it returns the commit's SHA.
func signedCommit(t *testing.T, url string, key *openpgp.Entity, name string) string {
	t.Helper()
	repo, err := git.Clone(memory.NewStorage(), memfs.New(), &git.CloneOptions{URL: url})
	must(t, err)
	wt, err := repo.Worktree()
	must(t, err)
	file, err := wt.Filesystem.Create(name)
	must(t, err)
	_, err = file.Write([]byte(name + "\n"))
	must(t, err)
	must(t, file.Close())
	_, err = wt.Add(name)
	must(t, err)
	sig := &object.Signature{Name: "Signer", Email: "signer@convoy.invalid", When: time.Now()}
	hash, err := wt.Commit("add "+name, &git.CommitOptions{Author: sig, Committer: sig, SignKey: key})
	must(t, err)
	must(t, repo.Push(&git.PushOptions{}))
	return hash.String()
}

func newKey(t *testing.T, name string) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@convoy.invalid", nil)
	must(t, err)
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	must(t, err)
	must(t, e.Serialize(w))
	must(t, w.Close())
	return e, buf.String()
}

func TestFetchVerifiesSignature(t *testing.T) {
	f := newFixture(t)
	cache := t.TempDir()
	_, otherArmored := newKey(t, "other")
	trusted, trustedArmored := newKey(t, "trusted")
	untrusted, _ := newKey(t, "untrusted")
	// Two armor blocks: the trusted key is the second.
	keyring := otherArmored + "\n" + trustedArmored

	tests := []struct {
		name    string
		key     *openpgp.Entity
		wantErr *source.VerificationError // Revision filled in below
	}{
		{"trusted", trusted, nil},
		{"unsigned", nil, &source.VerificationError{Reason: "unsigned"}},
		{"untrusted", untrusted, &source.VerificationError{
			KeyID: untrusted.PrimaryKey.KeyIdString(), Reason: "key not in the keyring"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sha := signedCommit(t, f.repo.URL, tt.key, tt.name+".txt")
			s := newSource(t, source.Options{URL: f.repo.URL, CacheDir: cache, Verify: source.VerifyHead, Keyring: keyring})
			snap, err := s.Fetch(context.Background(), "")
			if tt.wantErr == nil {
				must(t, err)
				want := source.Commit{Signed: true, Verified: true, SignerKeyID: trusted.PrimaryKey.KeyIdString()}
				got := source.Commit{Signed: snap.Commit.Signed, Verified: snap.Commit.Verified, SignerKeyID: snap.Commit.SignerKeyID}
				if diff := cmp.Diff(want, got); diff != "" || snap.Revision != sha {
					t.Errorf("snapshot %s, want %s; signature (-want +got):\n%s", snap.Revision, sha, diff)
				}
				return
			}
			var verr *source.VerificationError
			if !errors.As(err, &verr) {
				t.Fatalf("Fetch err = %v, want a *VerificationError", err)
			}
			want := *tt.wantErr
			want.Revision = sha
			if diff := cmp.Diff(want, *verr); diff != "" {
				t.Errorf("verification error (-want +got):\n%s", diff)
			}
			for _, part := range []string{sha, tt.wantErr.KeyID, tt.wantErr.Reason} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not name %q", err, part)
				}
			}
			if entries, _ := os.ReadDir(filepath.Join(cache, sha)); len(entries) != 0 {
				t.Errorf("a snapshot of the rejected commit was written")
			}
		})
	}

	t.Run("off records without verifying", func(t *testing.T) {
		sha := signedCommit(t, f.repo.URL, untrusted, "off.txt")
		snap, err := newSource(t, source.Options{URL: f.repo.URL}).Fetch(context.Background(), "")
		must(t, err)
		if snap.Revision != sha || !snap.Commit.Signed || snap.Commit.Verified ||
			snap.Commit.SignerKeyID != untrusted.PrimaryKey.KeyIdString() {
			t.Errorf("commit = %+v, want signed by %s and not verified", snap.Commit, untrusted.PrimaryKey.KeyIdString())
		}
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	cache := t.TempDir()
	tests := []struct {
		name    string
		opts    source.Options
		wantErr string
	}{
		{"no URL", source.Options{CacheDir: cache}, "URL is empty"},
		{"no cache", source.Options{URL: "https://example.com/r.git"}, "CacheDir is empty"},
		{"bad scheme", source.Options{URL: "ftp://example.com/r.git", CacheDir: cache}, `scheme "ftp"`},
		{"bad verify mode", source.Options{URL: "https://example.com/r.git", CacheDir: cache, Verify: "all"}, `verify mode "all"`},
		{"verify without keyring", source.Options{URL: "https://example.com/r.git", CacheDir: cache, Verify: source.VerifyHead}, "no armored OpenPGP public key"},
		{"ssh without key", source.Options{URL: "git@example.com:org/r.git", CacheDir: cache}, "without an SSH key"},
		{"ssh without known_hosts", source.Options{URL: "ssh://git@example.com/org/r.git", CacheDir: cache,
			Auth: source.Auth{SSHKey: []byte("key")}}, "without a known_hosts file"},
		{"bad branch", source.Options{URL: "https://example.com/r.git", CacheDir: cache, Branch: "a b"}, "not a valid branch name"},
		{"secret never echoed", source.Options{URL: "https://u:hunter22@example.com/r.git", CacheDir: cache, Verify: "x"}, "https://***@example.com/r.git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := source.New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New err = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://github.com/acme/fleet.git", "https://github.com/acme/fleet.git"},
		{"https://user:pass@github.com/acme/fleet.git", "https://***@github.com/acme/fleet.git"},
		{"https://ghp_token@github.com/acme/fleet.git", "https://***@github.com/acme/fleet.git"},
		{"https://github.com/acme/fleet.git?access_token=abc", "https://github.com/acme/fleet.git"},
		{"ssh://git@github.com/acme/fleet.git", "ssh://***@github.com/acme/fleet.git"},
		{"git@github.com:acme/fleet.git", "git@github.com:acme/fleet.git"},
		{"/srv/git/fleet", "/srv/git/fleet"},
		{"https://us%er:p@ss@host/x", "https://***@host/x"},
	}
	for _, tt := range tests {
		if got := source.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzRedactURL checks that no password or token-as-user of a URL survives
// redaction.
func FuzzRedactURL(f *testing.F) {
	f.Add("https://user:pass@github.com/acme/fleet.git")
	f.Add("https://tok@h/p?x=1")
	f.Add("http://a:b@c:d@host/")
	f.Add("ssh://git@host:22/x")
	f.Fuzz(func(t *testing.T, raw string) {
		got := source.RedactURL(raw)
		scheme, rest, ok := strings.Cut(raw, "://")
		if !ok {
			return
		}
		at := strings.LastIndex(rest, "@")
		if slash := strings.IndexAny(rest, "/?#"); at < 0 || (slash >= 0 && slash < at) {
			return
		}
		userinfo := rest[:at]
		if len(userinfo) < 4 || strings.Contains(scheme+"://***@"+rest[at+1:], userinfo) {
			return // too short to tell apart, or also in the host or path
		}
		if strings.Contains(got, userinfo) {
			t.Errorf("RedactURL(%q) = %q keeps the user information", raw, got)
		}
	})
}

// TestFetchScrubsEchoedSecrets: a server that echoes the credentials it got
// into its error page must not get them into convoy's errors.
func TestFetchScrubsEchoedSecrets(t *testing.T) {
	const password, token = "pa ss/w0rd+x", "tok_123456789"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		http.Error(w, fmt.Sprintf("denied %s:%s (%s) header %q url %s", u, p, url.QueryEscape(p),
			r.Header.Get("Authorization"), r.URL), http.StatusForbidden)
	}))
	t.Cleanup(echo.Close)
	tests := []struct {
		name string
		url  string
		auth source.Auth
	}{
		{"password", echo.URL + "/r.git", source.Auth{Username: "robot", Password: password}},
		{"token", echo.URL + "/r.git", source.Auth{Token: token}},
		{"URL user and password", strings.Replace(echo.URL, "http://", "http://robot:"+url.PathEscape(password)+"@", 1) + "/r.git", source.Auth{}},
		{"URL token", strings.Replace(echo.URL, "http://", "http://"+token+"@", 1) + "/r.git", source.Auth{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newSource(t, source.Options{URL: tt.url, Auth: tt.auth}).Fetch(context.Background(), "")
			if !errors.Is(err, source.ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
			if !strings.Contains(err.Error(), "denied") {
				t.Fatalf("err = %v, want the server's message kept", err)
			}
			for _, sec := range []string{password, url.QueryEscape(password), url.PathEscape(password), token} {
				if strings.Contains(err.Error(), sec) {
					t.Errorf("error %q contains %q", err, sec)
				}
			}
			if strings.Contains(err.Error(), "Basic ") && !strings.Contains(err.Error(), `"Basic ***"`) {
				t.Errorf("error %q contains an Authorization header", err)
			}
		})
	}
}

func TestNewSSH(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	must(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	must(t, err)
	hostPub, _, err := ed25519.GenerateKey(nil)
	must(t, err)
	sshHostPub, err := ssh.NewPublicKey(hostPub)
	must(t, err)
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	must(t, os.WriteFile(knownHosts, []byte(knownhosts.Line([]string{"example.com"}, sshHostPub)+"\n"), 0o600))

	for _, u := range []string{"git@example.com:acme/fleet.git", "ssh://git@example.com/acme/fleet.git"} {
		_, err := source.New(source.Options{URL: u, CacheDir: t.TempDir(),
			Auth: source.Auth{SSHKey: pem.EncodeToMemory(block), KnownHostsFile: knownHosts}})
		if err != nil {
			t.Errorf("New(%s) with a key and known_hosts: %v", u, err)
		}
	}
	_, err = source.New(source.Options{URL: "git@example.com:acme/fleet.git", CacheDir: t.TempDir(),
		Auth: source.Auth{SSHKey: []byte("not a key"), KnownHostsFile: knownHosts}})
	if err == nil || !strings.Contains(err.Error(), "SSH key") {
		t.Errorf("New with a bad key: err = %v, want an SSH key error", err)
	}
}
