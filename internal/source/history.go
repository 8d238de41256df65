package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// History reads a repository's commits, trees and files from its object
// store, never from a work tree: a local repository (OpenLocal) or a bare
// mirror of a remote one (Source.Mirror). It is safe for concurrent use.
type History struct {
	repo *git.Repository
	mu   sync.Mutex // go-git's storage is not safe for concurrent use
}

// ErrNotRepository is returned by OpenLocal for a directory that is not
// the root of a git repository.
var ErrNotRepository = errors.New("not a git repository")

// OpenLocal opens the git repository whose work tree (or bare directory)
// is dir. A directory that is not a repository's root (none at all, or a
// folder inside one) is ErrNotRepository: a config repository's fleet.yaml
// is at its root, and a folder has no revision of its own.
func OpenLocal(dir string) (*History, error) {
	r, err := git.PlainOpen(dir)
	if err == nil {
		return &History{repo: r}, nil
	}
	if !errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return nil, fmt.Errorf("%s: %w", dir, ErrNotRepository)
}

// mirrorCache is the object cache of a mirror.
const mirrorCache = 4 * cache.MiByte

// mirrorLocks serialises the syncs of one mirror directory in a process.
var mirrorLocks sync.Map // dir → *sync.Mutex

// MirrorDir is the directory under base that keeps the mirror of url.
func MirrorDir(base, url string) string {
	sum := sha256.Sum256([]byte(RedactURL(url)))
	return filepath.Join(base, "mirror-"+hex.EncodeToString(sum[:8])+".git")
}

// Mirror fetches the watched branch, with its full history, and the refs
// named in extra (such as refs/pull/7/head, or refs/tags/*) into a bare
// repository at dir,
// created on first use and fetched incrementally after, and returns its
// History. Errors are scrubbed and classified as Fetch's are.
func (s *Source) Mirror(ctx context.Context, dir string, extra ...string) (*History, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	lock, _ := mirrorLocks.LoadOrStore(dir, &sync.Mutex{})
	lock.(*sync.Mutex).Lock()
	defer lock.(*sync.Mutex).Unlock()

	// A small object cache: go-git's default keeps up to 96 MiB of objects
	// for as long as the agent keeps the mirror, and a rollout reads a few
	// trees and blobs of it.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mirror %s: %w", dir, err)
	}
	storage := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRU(mirrorCache))
	r, err := git.Open(storage, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		r, err = git.Init(storage, nil)
		if err == nil {
			_, err = r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{s.url}})
		}
		if err == nil {
			head := plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(s.branch))
			err = r.Storer.SetReference(head)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mirror %s: %w", dir, err)
	}
	specs := []config.RefSpec{config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/heads/%s", s.branch, s.branch))}
	for _, ref := range extra {
		if !strings.HasPrefix(ref, "refs/") || strings.ContainsAny(ref, " ~^:?[\\") || strings.Count(ref, "*") > 1 {
			return nil, fmt.Errorf("mirror: ref %q: want a full ref name such as refs/pull/7/head, or a pattern such as refs/tags/*", ref)
		}
		specs = append(specs, config.RefSpec(fmt.Sprintf("+%s:%s", ref, ref)))
	}
	err = r.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RemoteURL: s.url, RefSpecs: specs, Tags: git.NoTags, Auth: s.auth, Force: true})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, s.failure(ctx, err)
	}
	return &History{repo: r}, nil
}

// Resolve returns the full SHA of the commit rev names: anything git
// accepts that names one commit (HEAD, a branch, a tag, a full or short
// SHA, HEAD~1, main^2).
func (h *History) Resolve(rev string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev == "" {
		rev = "HEAD"
	}
	hash, err := h.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return "", fmt.Errorf("revision %q: %w: want a commit (HEAD, a branch, a tag, a SHA of 4 or more digits, HEAD~1)", rev, ErrNotFound)
	}
	return hash.String(), nil
}

// Commit describes the commit hash.
func (h *History) Commit(hash string) (Commit, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return Commit{}, fmt.Errorf("commit %s: %w", Short(hash), err)
	}
	return commitInfo(c), nil
}

// Snapshot writes commit hash's tree into cacheDir (unless it is there) and
// returns it, as Source.Fetch does.
func (h *History) Snapshot(ctx context.Context, hash, cacheDir string) (*Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", Short(hash), err)
	}
	w := &Source{cacheDir: cacheDir}
	dir := w.snapshotDir(hash)
	if !isDir(dir) {
		if dir, err = w.writeSnapshot(ctx, c); err != nil {
			return nil, err
		}
	}
	return &Snapshot{Revision: hash, Dir: dir, Commit: commitInfo(c)}, nil
}

// FirstParents returns the commits a branch gained from base to target,
// newest first: target and its first parents down to, not including, base.
// When base is not on that line (history was rewritten, or base is on a
// merged branch) it returns every ancestor of target that is not one of
// base. With base "" it returns target alone. More than max commits is an
// error naming max.
func (h *History) FirstParents(base, target string, max int) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if base == target {
		return nil, nil
	}
	if base == "" {
		return []string{target}, nil
	}
	var out []string
	hash := plumbing.NewHash(target)
	for len(out) <= max {
		if hash.String() == base {
			return out, nil
		}
		c, err := h.repo.CommitObject(hash)
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", Short(hash.String()), err)
		}
		out = append(out, hash.String())
		if len(c.ParentHashes) == 0 {
			return h.notAncestors(base, target, max)
		}
		hash = c.ParentHashes[0]
	}
	return nil, &TooManyCommits{Base: base, Target: target, Max: max}
}

// TooManyCommits is a range of more commits than a caller's limit.
type TooManyCommits struct {
	Base, Target string
	Max          int
}

func (e *TooManyCommits) Error() string {
	return fmt.Sprintf("%s carries more than %d commits since %s: too many to judge one by one", Short(e.Target), e.Max, Short(e.Base))
}

// maxAncestry bounds the ancestors of a base read to tell a range.
const maxAncestry = 100_000

// notAncestors returns the ancestors of target (itself included) that are
// not ancestors of base, newest first.
func (h *History) notAncestors(base, target string, max int) ([]string, error) {
	seen := map[plumbing.Hash]bool{}
	if _, err := h.repo.CommitObject(plumbing.NewHash(base)); err == nil {
		iter, err := h.repo.Log(&git.LogOptions{From: plumbing.NewHash(base)})
		if err != nil {
			return nil, err
		}
		n := 0
		err = iter.ForEach(func(c *object.Commit) error {
			if n++; n > maxAncestry {
				return io.EOF
			}
			seen[c.Hash] = true
			return nil
		})
		if err != nil && err != io.EOF {
			return nil, err
		}
	}
	iter, err := h.repo.Log(&git.LogOptions{From: plumbing.NewHash(target), Order: git.LogOrderCommitterTime})
	if err != nil {
		return nil, err
	}
	var out []string
	err = iter.ForEach(func(c *object.Commit) error {
		if seen[c.Hash] {
			return nil
		}
		if len(out) == max {
			return &TooManyCommits{Base: base, Target: target, Max: max}
		}
		out = append(out, c.Hash.String())
		return nil
	})
	return out, err
}

// ChangedFiles returns the paths that differ between the trees of from and
// to, sorted (for a rename, both paths); every path of to when from is "".
func (h *History) ChangedFiles(from, to string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	toTree, err := h.tree(to)
	if err != nil {
		return nil, err
	}
	var fromTree *object.Tree
	if from != "" {
		if fromTree, err = h.tree(from); err != nil {
			return nil, err
		}
	}
	changes, err := object.DiffTree(fromTree, toTree)
	if err != nil {
		return nil, fmt.Errorf("diff %s..%s: %w", Short(from), Short(to), err)
	}
	set := map[string]bool{}
	for _, c := range changes {
		if c.From.Name != "" {
			set[c.From.Name] = true
		}
		if c.To.Name != "" {
			set[c.To.Name] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// FirstParent returns the first parent of hash, "" for a root commit.
func (h *History) FirstParent(hash string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", Short(hash), err)
	}
	if len(c.ParentHashes) == 0 {
		return "", nil
	}
	return c.ParentHashes[0].String(), nil
}

func (h *History) tree(hash string) (*object.Tree, error) {
	c, err := h.repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", Short(hash), err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("commit %s: tree: %w", Short(hash), err)
	}
	return t, nil
}

// Dirty lists the paths of a local repository's work tree that differ from
// HEAD (modified, added, deleted, staged or not; untracked files are not
// listed), at most max of them; nil when clean.
func (h *History) Dirty(max int) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wt, err := h.repo.Worktree()
	if err != nil {
		return nil, nil // a bare repository has no work tree
	}
	st, err := wt.Status()
	if err != nil {
		return nil, fmt.Errorf("work tree status: %w", err)
	}
	var out []string
	for p, s := range st {
		if s.Staging == git.Untracked && s.Worktree == git.Untracked {
			continue
		}
		if s.Staging != git.Unmodified || s.Worktree != git.Unmodified {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	if len(out) > max {
		out = append(out[:max], "…")
	}
	return out, nil
}

// NotRegular is what Files gives as the content of a path that is no
// regular file.
const NotRegular = "\x00not a regular file"

// Short cuts a commit SHA to the 12 characters convoy's messages show.
func Short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// ReadFile returns the content of path at commit hash; ok is false when
// the path is not a regular file there. Files over max bytes are an error.
func (h *History) ReadFile(hash, path string, max int64) (data []byte, ok bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, err := h.tree(hash)
	if err != nil {
		return nil, false, err
	}
	f, err := t.File(path)
	if err != nil {
		return nil, false, nil
	}
	if !f.Mode.IsFile() {
		return nil, false, nil
	}
	if f.Size > max {
		return nil, false, fmt.Errorf("%s at %s is %d bytes, over the %d byte limit", path, Short(hash), f.Size, max)
	}
	s, err := f.Contents()
	if err != nil {
		return nil, false, fmt.Errorf("%s at %s: %w", path, Short(hash), err)
	}
	return []byte(s), true, nil
}

// Files returns the files under dir (a slash path; "" for none) and the
// files named in paths, at commit hash, with their contents; a file that is
// no regular file (a symbolic link, a submodule) has NotRegular as content,
// and one over max bytes is an error. Only those trees are read.
func (h *History) Files(hash, dir string, paths []string, max int64) (map[string][]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, err := h.tree(hash)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	add := func(name string, f *object.File) error {
		if !f.Mode.IsFile() {
			out[name] = []byte(NotRegular)
			return nil
		}
		if f.Size > max {
			return fmt.Errorf("%s at %s is %d bytes, over the %d byte limit", name, Short(hash), f.Size, max)
		}
		s, err := f.Contents()
		if err != nil {
			return fmt.Errorf("%s at %s: %w", name, Short(hash), err)
		}
		out[name] = []byte(s)
		return nil
	}
	for _, p := range paths {
		if f, err := t.File(p); err == nil {
			if err := add(p, f); err != nil {
				return nil, err
			}
		}
	}
	if dir == "" {
		return out, nil
	}
	sub, err := t.Tree(dir)
	if err != nil {
		return out, nil // no such folder
	}
	err = sub.Files().ForEach(func(f *object.File) error { return add(dir+"/"+f.Name, f) })
	return out, err
}
