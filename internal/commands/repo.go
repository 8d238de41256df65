package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/source"
)

// checkout is a config repository at one commit, ready to render: a
// snapshot written from the repository's object store, never its work tree
// (unless --worktree asks for it, and then without a revision).
type checkout struct {
	Dir      string         // what renders
	Revision string         // the commit's full SHA; "" for a work tree or a plain directory
	Commit   *source.Commit // nil without a revision
	History  *source.History
	// Worktree: Dir is a work tree as it is, with uncommitted changes
	// maybe; Head is the commit it is based on.
	Worktree bool
	Head     string
	// Plain: Dir is a directory that is no git repository.
	Plain    bool
	cacheDir string
	Fleet    *fleet.Fleet
}

// repoOptions say what openRepo opens.
type repoOptions struct {
	repo, revision string
	worktree       bool // render the work tree as it is (render and plan only)
	clean          bool // refuse a work tree with uncommitted changes (apply, without --revision)
	allowInsecure  bool // accept http:// and git:// URLs
}

// insecureURL says why a URL sends what it carries in clear, "" when it does not.
func insecureURL(u string) string {
	for _, scheme := range []string{"http://", "git://"} {
		if strings.HasPrefix(strings.ToLower(u), scheme) {
			return strings.TrimSuffix(scheme, "://") + " is not encrypted: use https:// or ssh:// (--allow-insecure is for tests and local servers)"
		}
	}
	return ""
}

// openRepo resolves --repo (a directory or a Git URL) and --revision
// (anything git accepts that names one commit; HEAD by default) and
// snapshots that commit from the object store. A Git URL is mirrored into
// the cache first. A directory that is no git repository is used as it is.
func openRepo(ctx context.Context, o repoOptions) (*checkout, error) {
	if o.repo == "" {
		return nil, fmt.Errorf("--repo: required")
	}
	cache, err := snapshotCacheDir()
	if err != nil {
		return nil, err
	}
	co := &checkout{cacheDir: cache}
	if looksLikeURL(o.repo) {
		if o.worktree {
			return nil, errors.New("--worktree: needs --repo to be a local directory")
		}
		if why := insecureURL(o.repo); why != "" && !o.allowInsecure {
			return nil, fmt.Errorf("--repo %s: %s", source.RedactURL(o.repo), why)
		}
		src, err := source.New(source.Options{URL: o.repo, CacheDir: cache, Auth: source.Auth{Token: os.Getenv("GIT_TOKEN")}})
		if err != nil {
			return nil, fmt.Errorf("--repo: %w", err)
		}
		if co.History, err = src.Mirror(ctx, source.MirrorDir(filepath.Dir(cache), o.repo), "refs/heads/*", "refs/tags/*"); err != nil {
			return nil, err
		}
	} else {
		abs, err := filepath.Abs(o.repo)
		if err != nil {
			return nil, fmt.Errorf("--repo %s: %w", o.repo, err)
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--repo %s: not a directory", o.repo)
		}
		co.History, err = source.OpenLocal(abs)
		switch {
		case errors.Is(err, source.ErrNotRepository):
			if o.revision != "" {
				return nil, fmt.Errorf("--revision %s: %s is not a git repository", o.revision, o.repo)
			}
			co.Dir, co.Plain, co.History = abs, true, nil
		case err != nil:
			return nil, fmt.Errorf("--repo: %w", err)
		case o.worktree:
			if o.revision != "" {
				return nil, errors.New("--worktree and --revision: pick one (the work tree has no revision)")
			}
			co.Dir, co.Worktree = abs, true
			co.Head, _ = co.History.Resolve("HEAD")
		case o.clean && o.revision == "":
			dirty, err := co.History.Dirty(10)
			if err != nil {
				return nil, fmt.Errorf("--repo %s: %w", o.repo, err)
			}
			if len(dirty) > 0 {
				return nil, fmt.Errorf("--repo %s: the work tree has uncommitted changes (%s): convoy rolls out commits only; commit them, or pass --revision to roll out a commit as it is", o.repo, strings.Join(dirty, ", "))
			}
		}
	}
	if co.Dir == "" {
		rev, err := co.History.Resolve(o.revision)
		if err != nil {
			return nil, fmt.Errorf("--revision: %w", err)
		}
		snap, err := co.History.Snapshot(ctx, rev, cache)
		if err != nil {
			return nil, err
		}
		co.Dir, co.Revision, co.Commit = snap.Dir, snap.Revision, &snap.Commit
	}
	f, err := fleet.Load(co.Dir)
	if err != nil {
		return nil, err
	}
	co.Fleet = f
	return co, nil
}

// label says what the checkout is, for messages: a short SHA, "the work
// tree (uncommitted, on abc123)" or "the directory".
func (co *checkout) label() string {
	switch {
	case co.Worktree && co.Head != "":
		return "the work tree (uncommitted, on " + source.Short(co.Head) + ")"
	case co.Worktree:
		return "the work tree (uncommitted)"
	case co.Plain:
		return "the directory (no git repository, no revision)"
	}
	return source.Short(co.Revision)
}

// snapshotCacheDir is where the CLI keeps snapshots between runs.
func snapshotCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "convoy", "snapshots")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("snapshot cache %s: %w", dir, err)
	}
	return dir, nil
}
