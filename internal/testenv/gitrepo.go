package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Deleted, as the content of a path in Repo.Commit, removes that path.
const Deleted = "\x00testenv:deleted\x00"

// gitEpoch is the author and committer date of the first commit a Repo or
// FixtureRepo makes; each later commit is one minute after the previous one,
// so SHAs are the same on every run.
var gitEpoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Repo is a repository served by a GitServer, with a work tree the test
// commits in; commits reach the served bare repository by a local push.
type Repo struct {
	Name    string // as given to CreateRepo
	URL     string // HTTP clone URL
	BareDir string // the served bare repository
	WorkDir string // the test's work tree, a clone of BareDir

	home string

	mu      sync.Mutex
	commits int
}

// Commit writes files (slash-separated path → content; Deleted removes the
// path) in the work tree, commits them on main with message, pushes to the
// served repository and returns the new commit's SHA. Commits pushed by others
// (over HTTP) are fetched first, so Commit always builds on the served head.
func (r *Repo) Commit(t testing.TB, message string, files map[string]string) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.git(t, r.WorkDir, "fetch", "--quiet", "origin", "main")
	r.git(t, r.WorkDir, "reset", "--quiet", "--hard", "FETCH_HEAD")
	if err := writeFiles(r.WorkDir, files); err != nil {
		t.Fatal(err)
	}
	r.git(t, r.WorkDir, "add", "--all")
	r.commit(t, r.WorkDir, message)
	r.git(t, r.WorkDir, "push", "--quiet", "origin", "main")
	return r.head(t, r.WorkDir)
}

// Head returns the SHA of main in the served repository.
func (r *Repo) Head(t testing.TB) string {
	t.Helper()
	return r.head(t, r.BareDir)
}

// Git runs git with args in the work tree and returns its standard output;
// call Push to publish what it committed.
func (r *Repo) Git(t testing.TB, args ...string) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.git(t, r.WorkDir, args...)
}

// Push publishes the work tree's main to the served repository.
func (r *Repo) Push(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.git(t, r.WorkDir, "push", "--quiet", "origin", "main")
}

// FixtureRepo makes a git repository (with a work tree) in a temporary
// directory whose first commit on main holds fixtureDir's content, and returns
// its path and that commit's SHA. A relative fixtureDir not found from the
// working directory is taken from the module root, so
// FixtureRepo(t, "fixtures/basic") works in every package. The SHA is the
// same on every run for the same content.
func FixtureRepo(t testing.TB, fixtureDir string) (path, sha string) {
	t.Helper()
	if !filepath.IsAbs(fixtureDir) {
		if _, err := os.Stat(fixtureDir); err != nil {
			root, rerr := ModuleRoot()
			if rerr != nil {
				t.Fatal(rerr)
			}
			fixtureDir = filepath.Join(root, fixtureDir)
		}
	}
	if fi, err := os.Stat(fixtureDir); err != nil || !fi.IsDir() {
		t.Fatalf("fixture %s is not a directory (err %v)", fixtureDir, err)
	}
	r := &Repo{Name: filepath.Base(fixtureDir), home: t.TempDir()}
	r.initWorkTree(t, t.TempDir(), fixtureDir)
	return r.WorkDir, r.head(t, r.WorkDir)
}

// initWorkTree makes dir a repository on main whose first commit holds
// fromDir's content.
func (r *Repo) initWorkTree(t testing.TB, dir, fromDir string) {
	t.Helper()
	r.WorkDir = dir
	r.git(t, dir, "init", "--quiet", "--initial-branch=main")
	if fromDir != "" {
		if err := CopyTree(fromDir, dir); err != nil {
			t.Fatalf("copy %s: %v", fromDir, err)
		}
	}
	r.git(t, dir, "add", "--all")
	message := "initial content"
	if fromDir != "" {
		message += " from " + filepath.Base(fromDir)
	}
	r.commit(t, dir, message)
}

func (r *Repo) commit(t testing.TB, dir, message string) {
	t.Helper()
	when := gitEpoch.Add(time.Duration(r.commits) * time.Minute).Format(time.RFC3339)
	r.commits++
	env := []string{"GIT_AUTHOR_DATE=" + when, "GIT_COMMITTER_DATE=" + when}
	if _, err := runGit(context.Background(), dir, append(gitEnv(r.home), env...),
		"commit", "--quiet", "--allow-empty", "--no-verify", "-m", message); err != nil {
		t.Fatal(err)
	}
}

func (r *Repo) head(t testing.TB, dir string) string {
	t.Helper()
	return strings.TrimSpace(r.git(t, dir, "rev-parse", "main"))
}

func (r *Repo) git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := runGit(context.Background(), dir, gitEnv(r.home), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gitEnv is the environment of every git process testenv runs: no system or
// user configuration, a fixed identity, never a prompt.
func gitEnv(home string) []string {
	env := []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + filepath.Join(home, ".gitconfig"),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Convoy Test",
		"GIT_AUTHOR_EMAIL=test@convoy.invalid",
		"GIT_COMMITTER_NAME=Convoy Test",
		"GIT_COMMITTER_EMAIL=test@convoy.invalid",
		"LC_ALL=C",
	}
	if p := os.Getenv("PATH"); p != "" {
		env = append(env, "PATH="+p)
	}
	return env
}

func runGit(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	full := append([]string{"-c", "core.symlinks=true", "-c", "core.autocrlf=false",
		"-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"}, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// writeFiles writes or removes files under dir; parent directories are made.
func writeFiles(dir string, files map[string]string) error {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if !filepath.IsLocal(filepath.FromSlash(p)) {
			return fmt.Errorf("commit path %q is not inside the repository", p)
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if files[p] == Deleted {
			if err := os.RemoveAll(full); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CopyTree copies the regular files, directories and symlinks (as symlinks)
// of src into dst, keeping executable bits; a .git entry is skipped.
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm()|0o200)
		default:
			return fmt.Errorf("%s: unsupported file type %s", path, d.Type())
		}
	})
}

// CommitWorkTree commits everything in dir, a work tree FixtureRepo made
// (files written, changed or removed since), and returns the new commit's
// SHA.
func CommitWorkTree(t testing.TB, dir, message string) string {
	t.Helper()
	r := &Repo{WorkDir: dir, home: t.TempDir(), commits: 1000}
	r.git(t, dir, "add", "--all")
	r.commit(t, dir, message)
	return r.head(t, dir)
}
