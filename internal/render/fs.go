package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// MaxFileSize is the largest file, in bytes, that a render reads from a
// config repository. Larger files are refused with an error naming them.
const MaxFileSize = 4 << 20

// errReadOnly is returned by every write to a repoFS.
var errReadOnly = errors.New("the config repository is read-only during a render")

// repoFS is a kustomize file system confined to one repository directory: it
// refuses any path that is, or resolves through symbolic links to, a path
// outside the root; it refuses files larger than MaxFileSize; it refuses
// kustomization files that name remote bases or files; and it is read-only.
// It records the files one build has read and what it refused, so that
// errors can name sources. It observes the disk through a repoCache, which
// the builds of one render share.
type repoFS struct {
	*repoCache
	ctx context.Context // the render's; nil: no deadline

	mu      sync.Mutex
	read    []string // repo-relative paths of files read, in order
	refused []error  // what the file system refused, each message once
}

var _ filesys.FileSystem = (*repoFS)(nil)

// repoCache remembers what the disk answered during one render (one call of
// Renderer.Cluster or Renderer.All): symbolic link resolutions, file
// information, file contents and the checks of kustomization files.
// Clusters that share bases read each file and resolve each path once, and
// every build of the render sees the same repository even if it changes
// meanwhile. A cache lives no longer than its render, so a later render,
// of another revision, sees that revision.
type repoCache struct {
	disk filesys.FileSystem
	root string // absolute, symlinks resolved
	// dir is root opened as an os.Root: every file and directory a build
	// reads is opened through it, so that the kernel, not only the checks
	// below, keeps reads inside the repository, even if a path is swapped
	// for a symbolic link between a check and the read.
	dir *os.Root

	mu       sync.Mutex
	resolved map[string]resolution // absolute path → symlink-free path
	stats    map[string]statResult // resolved path → os.Stat
	lstats   map[string]error      // resolved path → os.Lstat's error
	files    map[string]fileResult // resolved path → contents
	checked  map[string]error      // resolved path → checkContent

	// parsed keeps the YAML kustomize parsed, by content: the clusters of
	// a render share bases, which are then parsed once and copied.
	parsed *resource.ParseCache
}

type resolution struct {
	path string
	err  error
}

type statResult struct {
	fi  os.FileInfo
	err error
}

type fileResult struct {
	b   []byte
	err error
}

// newRepoCache returns an empty cache of the repository dir.
func newRepoCache(dir string) (*repoCache, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", dir, err)
	}
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", dir, err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("repository %s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("repository %s: not a directory", dir)
	}
	rootDir, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", dir, err)
	}
	return &repoCache{
		disk: filesys.MakeFsOnDisk(), root: root, dir: rootDir,
		resolved: map[string]resolution{}, stats: map[string]statResult{}, lstats: map[string]error{},
		files: map[string]fileResult{}, checked: map[string]error{},
		parsed: resource.NewParseCache(),
	}, nil
}

// newRepoFS returns a file system confined to dir, for one build.
func newRepoFS(dir string) (*repoFS, error) {
	c, err := newRepoCache(dir)
	if err != nil {
		return nil, err
	}
	return c.fs(), nil
}

// fs returns a file system for one build that observes the disk through c.
func (c *repoCache) fs() *repoFS { return &repoFS{repoCache: c} }

// resolve is the cached resolve of an absolute path.
func (c *repoCache) resolve(abs string) (string, error) {
	c.mu.Lock()
	r, ok := c.resolved[abs]
	c.mu.Unlock()
	if !ok {
		r.path, r.err = resolve(abs)
		c.mu.Lock()
		c.resolved[abs] = r
		c.mu.Unlock()
	}
	return r.path, r.err
}

// stat is the cached os.Stat of a resolved path.
func (c *repoCache) stat(resolved string) (os.FileInfo, error) {
	c.mu.Lock()
	r, ok := c.stats[resolved]
	c.mu.Unlock()
	if !ok {
		r.fi, r.err = c.dir.Stat(c.inRoot(resolved))
		c.mu.Lock()
		c.stats[resolved] = r
		c.mu.Unlock()
	}
	return r.fi, r.err
}

// lstat is the cached error of os.Lstat of a resolved path.
func (c *repoCache) lstat(resolved string) error {
	c.mu.Lock()
	err, ok := c.lstats[resolved]
	c.mu.Unlock()
	if !ok {
		_, err = c.dir.Lstat(c.inRoot(resolved))
		c.mu.Lock()
		c.lstats[resolved] = err
		c.mu.Unlock()
	}
	return err
}

// readFile is the cached contents of a resolved path; each caller gets its
// own copy.
func (c *repoCache) readFile(resolved string) ([]byte, error) {
	c.mu.Lock()
	r, ok := c.files[resolved]
	c.mu.Unlock()
	if !ok {
		r.b, r.err = c.dir.ReadFile(c.inRoot(resolved))
		c.mu.Lock()
		c.files[resolved] = r
		c.mu.Unlock()
	}
	if r.err != nil {
		return nil, r.err
	}
	return bytes.Clone(r.b), nil
}

// checkContent checks the contents b of the file at a resolved path, once
// per cache: checkKustomization for a kustomization, checkAliases for
// every file.
func (c *repoCache) checkContent(resolved, rel string, b []byte) error {
	c.mu.Lock()
	err, ok := c.checked[resolved]
	c.mu.Unlock()
	if !ok {
		if isKustomizationFile(resolved) {
			err = checkKustomization(rel, b)
		}
		if err == nil {
			err = checkAliases(rel, b)
		}
		c.mu.Lock()
		c.checked[resolved] = err
		c.mu.Unlock()
	}
	return err
}

// outsideError says that a path leaves the repository.
type outsideError struct {
	path     string // as given, or repo-relative when inside
	resolved string // symlink target when it differs from path
}

// refuse records err as a refusal and returns it.
func (fs *repoFS) refuse(err error) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, r := range fs.refused {
		if r.Error() == err.Error() {
			return err
		}
	}
	fs.refused = append(fs.refused, err)
	return err
}

// refusals returns what the file system has refused so far.
func (fs *repoFS) refusals() []error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]error(nil), fs.refused...)
}

func (e *outsideError) Error() string {
	if e.resolved != "" {
		return fmt.Sprintf("file %q resolves to %q, outside the repository", e.path, e.resolved)
	}
	return fmt.Sprintf("file %q is outside the repository", e.path)
}

// within reports whether the absolute, clean path p is the root or below it.
func (c *repoCache) within(p string) bool {
	return p == c.root || strings.HasPrefix(p, c.root+string(filepath.Separator))
}

// inRoot names a resolved path, inside the root, for c.dir: relative,
// "." for the root itself.
func (c *repoCache) inRoot(resolved string) string {
	r, err := filepath.Rel(c.root, resolved)
	if err != nil {
		return resolved // absolute: c.dir refuses it
	}
	return r
}

// rel returns p relative to the root when p is inside it, else p.
func (c *repoCache) rel(p string) string {
	if c.within(p) {
		if r, err := filepath.Rel(c.root, p); err == nil {
			return filepath.ToSlash(r)
		}
	}
	return p
}

// check returns the absolute, symlink-free form of p, or an error when p is
// outside the repository. A path that does not exist is checked lexically
// after resolving its longest existing parent, so that the caller's own
// operation reports "not found".
func (fs *repoFS) check(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	// Paths under the root as given are named relative to it in errors.
	if !fs.within(abs) {
		name := abs
		if r, err := filepath.Rel(fs.root, abs); err == nil {
			name = filepath.ToSlash(r)
		}
		return "", &outsideError{path: name}
	}
	resolved, err := fs.resolve(abs)
	if err != nil {
		return "", err
	}
	if !fs.within(resolved) {
		return "", &outsideError{path: fs.rel(abs), resolved: resolved}
	}
	return resolved, nil
}

// checkUse is check for an operation that fails when p is refused: the
// refusal is recorded, so that it can be reported even when kustomize
// replaces it by the error of a fallback attempt.
func (fs *repoFS) checkUse(p string) (string, error) {
	r, err := fs.check(p)
	var oe *outsideError
	if errors.As(err, &oe) {
		fs.refuse(err)
	}
	return r, err
}

// resolve evaluates the symbolic links of abs; when abs does not exist it
// resolves the longest existing parent and appends the rest.
func resolve(abs string) (string, error) {
	r, err := filepath.EvalSymlinks(abs)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	parent := filepath.Dir(abs)
	if parent == abs {
		return abs, nil
	}
	rp, err := resolve(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(abs)), nil
}

// Create refuses: a render never writes.
func (fs *repoFS) Create(string) (filesys.File, error) { return nil, errReadOnly }

// Mkdir refuses: a render never writes.
func (fs *repoFS) Mkdir(string) error { return errReadOnly }

// MkdirAll refuses: a render never writes.
func (fs *repoFS) MkdirAll(string) error { return errReadOnly }

// RemoveAll refuses: a render never writes.
func (fs *repoFS) RemoveAll(string) error { return errReadOnly }

// WriteFile refuses: a render never writes.
func (fs *repoFS) WriteFile(string, []byte) error { return errReadOnly }

// Open opens a file of the repository for reading.
func (fs *repoFS) Open(p string) (filesys.File, error) {
	if fs.ctx != nil && fs.ctx.Err() != nil {
		return nil, fs.ctx.Err()
	}
	r, err := fs.checkUse(p)
	if err != nil {
		return nil, err
	}
	if err := fs.checkSize(r); err != nil {
		return nil, err
	}
	return fs.dir.Open(fs.inRoot(r))
}

// IsDir reports whether p is a directory inside the repository.
func (fs *repoFS) IsDir(p string) bool {
	r, err := fs.check(p)
	if err != nil {
		return false
	}
	fi, err := fs.stat(r)
	return err == nil && fi.IsDir()
}

// ReadDir lists a directory of the repository.
func (fs *repoFS) ReadDir(p string) ([]string, error) {
	r, err := fs.checkUse(p)
	if err != nil {
		return nil, err
	}
	entries, err := iofs.ReadDir(fs.dir.FS(), filepath.ToSlash(fs.inRoot(r)))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// CleanedAbs splits p, resolved, into a confirmed directory and a file name.
func (fs *repoFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	r, err := fs.checkUse(p)
	if err != nil {
		return "", "", err
	}
	if err := fs.lstat(r); err != nil {
		return "", "", fmt.Errorf("%s: %w", fs.rel(r), os.ErrNotExist)
	}
	// r is absolute and free of symbolic links, so the disk's own
	// CleanedAbs would only confirm, with more system calls, what the
	// cache knows; a dangling link is left to it.
	if fi, err := fs.stat(r); err == nil {
		if fi.IsDir() {
			return filesys.ConfirmedDir(r), "", nil
		}
		return filesys.ConfirmedDir(filepath.Dir(r)), filepath.Base(r), nil
	}
	return fs.disk.CleanedAbs(r)
}

// Exists reports whether p exists inside the repository.
func (fs *repoFS) Exists(p string) bool {
	r, err := fs.check(p)
	if err != nil {
		return false
	}
	_, err = fs.stat(r)
	return err == nil
}

// Glob returns the repository's files matching pattern.
func (fs *repoFS) Glob(pattern string) ([]string, error) {
	matches, err := fs.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	out := matches[:0]
	for _, m := range matches {
		if _, err := fs.check(m); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// ReadFile returns the contents of a file of the repository.
func (fs *repoFS) ReadFile(p string) ([]byte, error) {
	if fs.ctx != nil && fs.ctx.Err() != nil {
		return nil, fs.ctx.Err()
	}
	r, err := fs.checkUse(p)
	if err != nil {
		return nil, err
	}
	if err := fs.checkSize(r); err != nil {
		return nil, err
	}
	b, err := fs.readFile(r)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize { // it grew since the check
		return nil, fs.refuse(tooLarge(fs.rel(r), int64(len(b))))
	}
	rel := fs.rel(r)
	fs.mu.Lock()
	fs.read = append(fs.read, rel)
	fs.mu.Unlock()
	if err := fs.checkContent(r, rel, b); err != nil {
		return nil, fs.refuse(err)
	}
	return b, nil
}

// Walk walks a directory tree of the repository.
func (fs *repoFS) Walk(p string, fn filepath.WalkFunc) error {
	r, err := fs.checkUse(p)
	if err != nil {
		return err
	}
	return fs.disk.Walk(r, func(path string, info os.FileInfo, err error) error {
		if err == nil {
			if _, cerr := fs.checkUse(path); cerr != nil {
				return cerr
			}
		}
		return fn(path, info, err)
	})
}

// filesRead returns the repo-relative paths of the files read so far.
func (fs *repoFS) filesRead() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.read...)
}

// checkSize refuses files larger than MaxFileSize.
func (fs *repoFS) checkSize(resolved string) error {
	fi, err := fs.stat(resolved)
	if err != nil {
		return nil // the operation itself reports it
	}
	if fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return fs.refuse(tooLarge(fs.rel(resolved), fi.Size()))
	}
	return nil
}

// tooLarge says that a file is larger than MaxFileSize.
func tooLarge(rel string, size int64) error {
	return fmt.Errorf("file %q is %d bytes, larger than the %d MiB limit", rel, size, MaxFileSize>>20)
}
