package commands

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/source"
)

// checkout is a config repository at one revision, ready to render.
type checkout struct {
	Dir      string
	Revision string
	Commit   *source.Commit // nil for a plain working directory
	cacheDir string         // where snapshots of other revisions go
	url      string         // what to fetch other revisions from
	Fleet    *fleet.Fleet
}

// openRepo resolves --repo (a directory or a Git URL) and --revision. A
// directory without --revision is used as it is, its revision being its
// git HEAD when it is a repository; anything else is fetched with
// internal/source into an immutable snapshot.
func openRepo(ctx context.Context, repo, revision string) (*checkout, error) {
	if repo == "" {
		return nil, fmt.Errorf("--repo: required")
	}
	co := &checkout{url: repo}
	if !looksLikeURL(repo) {
		abs, err := filepath.Abs(repo)
		if err != nil {
			return nil, fmt.Errorf("--repo %s: %w", repo, err)
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--repo %s: not a directory", repo)
		}
		co.url = abs
		if revision == "" {
			co.Dir, co.Revision = abs, gitRevision(abs)
		}
	}
	if co.Dir == "" {
		snap, err := co.fetch(ctx, revision)
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

// fetch snapshots revision (the branch head when empty) of the repository.
func (co *checkout) fetch(ctx context.Context, revision string) (*source.Snapshot, error) {
	if co.cacheDir == "" {
		dir, err := snapshotCacheDir()
		if err != nil {
			return nil, err
		}
		co.cacheDir = dir
	}
	src, err := source.New(source.Options{URL: co.url, Revision: revision, CacheDir: co.cacheDir,
		Auth: source.Auth{Token: os.Getenv("GIT_TOKEN")}})
	if err != nil {
		return nil, fmt.Errorf("--repo: %w", err)
	}
	snap, err := src.Fetch(ctx, "")
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// snapshotCacheDir is where the CLI keeps fetched revisions between runs.
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
