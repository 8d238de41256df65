package testenv

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// GitServer is a real smart-HTTP git server: `git http-backend` run as a CGI
// program behind an httptest server. Repositories are bare repos under a
// temporary directory; fetch and push work over HTTP like against any forge.
type GitServer struct {
	root string // holds the bare repositories, <root>/<name>.git
	home string // HOME and config of every git process the server runs
	srv  *httptest.Server
	cgi  *cgi.Handler

	mu       sync.Mutex
	user     string
	pass     string
	failCode int
	latency  time.Duration
	counts   GitRequests
}

// GitRequests counts the requests a GitServer received, by kind. Every
// request is counted when it arrives, before authentication or failure
// injection, so a test can tell "no fetch was attempted" from "a fetch failed".
type GitRequests struct {
	// InfoRefs is the ref advertisement for fetch (GET
	// info/refs?service=git-upload-pack): what `git ls-remote` and the first
	// step of every fetch or clone ask for.
	InfoRefs int
	// UploadPack is the fetch proper (POST git-upload-pack): objects were
	// negotiated and sent.
	UploadPack int
	// ReceivePack counts pushes (GET info/refs?service=git-receive-pack and
	// POST git-receive-pack).
	ReceivePack int
	// Other is anything else (dumb-protocol paths, unknown URLs).
	Other int
}

// NewGitServer starts a git smart-HTTP server that stops when the test ends.
func NewGitServer(t testing.TB) *GitServer {
	t.Helper()
	backend := filepath.Join(gitExecPath(t), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("git http-backend not found: %v", err)
	}
	s := &GitServer{root: t.TempDir(), home: t.TempDir()}
	s.cgi = &cgi.Handler{
		Path: backend,
		Root: "/",
		Dir:  s.root,
		Env: append(gitEnv(s.home),
			"GIT_PROJECT_ROOT="+s.root,
			"GIT_HTTP_EXPORT_ALL=1",
		),
		Stderr: testWriter{t},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.srv.Close)
	return s
}

// URL returns the HTTP URL of a repository created with CreateRepo.
func (s *GitServer) URL(repo string) string {
	return s.srv.URL + "/" + repo + ".git"
}

// Dir returns the path of a repository's bare directory on disk.
func (s *GitServer) Dir(repo string) string {
	return filepath.Join(s.root, filepath.FromSlash(repo)+".git")
}

// RequireBasicAuth makes every later request need these credentials; an empty
// user turns authentication off again.
func (s *GitServer) RequireBasicAuth(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass = user, pass
}

// SetFailing makes every later request answer the HTTP status code; 0 serves
// normally again.
func (s *GitServer) SetFailing(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCode = code
}

// SetLatency delays every later request by d (or until the client gives up),
// for timeout and cancellation tests; 0 removes the delay.
func (s *GitServer) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Requests returns the requests counted so far.
func (s *GitServer) Requests() GitRequests {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// ResetRequests sets the request counters back to zero.
func (s *GitServer) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = GitRequests{}
}

func (s *GitServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	switch {
	case strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-upload-pack":
		s.counts.InfoRefs++
	case strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
		s.counts.UploadPack++
	case strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-receive-pack",
		strings.HasSuffix(r.URL.Path, "/git-receive-pack"):
		s.counts.ReceivePack++
	default:
		s.counts.Other++
	}
	user, pass, failCode, latency := s.user, s.pass, s.failCode, s.latency
	s.mu.Unlock()

	if latency > 0 {
		if !sleepCtx(r.Context(), latency) {
			return
		}
	}
	if failCode != 0 {
		http.Error(w, http.StatusText(failCode), failCode)
		return
	}
	if user != "" {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="convoy-test"`)
			http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
			return
		}
	}
	s.cgi.ServeHTTP(w, r)
}

// CreateRepo makes a bare repository served as name whose first commit on
// main holds fromDir's content (symlinks and executable bits kept); an empty
// fromDir makes an empty first commit.
func (s *GitServer) CreateRepo(t testing.TB, name, fromDir string) *Repo {
	t.Helper()
	bare := s.Dir(name)
	if _, err := os.Stat(bare); err == nil {
		t.Fatalf("git repo %s exists already", name)
	}
	if err := os.MkdirAll(filepath.Dir(bare), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Repo{Name: name, URL: s.URL(name), BareDir: bare, home: s.home}
	r.git(t, s.root, "init", "--quiet", "--bare", "--initial-branch=main", bare)
	r.git(t, bare, "config", "http.receivepack", "true")
	r.initWorkTree(t, t.TempDir(), fromDir)
	r.git(t, r.WorkDir, "remote", "add", "origin", bare)
	r.git(t, r.WorkDir, "push", "--quiet", "origin", "main")
	return r
}

// gitExecPath returns `git --exec-path`, where git-http-backend lives.
func gitExecPath(t testing.TB) string {
	t.Helper()
	out, err := runGit(context.Background(), "", nil, "--exec-path")
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	return strings.TrimSpace(out)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// testWriter sends git http-backend's stderr to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("git http-backend: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
