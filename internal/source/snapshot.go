package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Snapshot is one revision of the repository, written out as a directory.
type Snapshot struct {
	// Revision is the commit's full SHA.
	Revision string
	// Dir holds the revision's tree: regular files (0644, or 0755 when
	// executable in git) and symlinks as they are in git, which may point
	// anywhere: readers must confine themselves to Dir. Never modified
	// once it exists.
	Dir string
	// Commit describes the revision; zero when Unchanged.
	Commit Commit
	// Unchanged reports that Revision is the lastRevision given to Fetch:
	// nothing was fetched and Commit is not filled in. Dir is set only if
	// that snapshot is still in the cache.
	Unchanged bool
}

// Commit is the metadata of a snapshot's commit.
type Commit struct {
	Author  string // author name
	Email   string // author email
	Message string
	Time    time.Time // author time
	Parents []string  // parent SHAs; two or more for a merge commit
	// Signed reports that the commit carries a signature.
	Signed bool
	// Verified reports that the signature was checked against the keyring
	// and holds (only with VerifyHead).
	Verified bool
	// SignerKeyID is the OpenPGP key ID (16 upper-case hex digits) the
	// signature names, when Signed.
	SignerKeyID string
}

func commitInfo(c *object.Commit) Commit {
	info := Commit{
		Author:  c.Author.Name,
		Email:   c.Author.Email,
		Message: c.Message,
		Time:    c.Author.When,
		Signed:  c.PGPSignature != "",
	}
	for _, p := range c.ParentHashes {
		info.Parents = append(info.Parents, p.String())
	}
	if info.Signed {
		info.SignerKeyID = signatureKeyID(c.PGPSignature)
	}
	return info
}

// snapshotDir is where revision's tree lives; commitFile keeps the raw
// commit object beside it, so a cached snapshot can be described and
// verified again without fetching.
func (s *Source) snapshotDir(revision string) string {
	return filepath.Join(s.cacheDir, revision)
}

func (s *Source) commitFile(revision string) string {
	return filepath.Join(s.cacheDir, revision+".commit")
}

// cached returns revision's snapshot when its directory and commit are in
// the cache and the commit's bytes hash to revision.
func (s *Source) cached(revision string) (*object.Commit, string, bool) {
	dir := s.snapshotDir(revision)
	if !isDir(dir) {
		return nil, "", false
	}
	raw, err := os.ReadFile(s.commitFile(revision))
	if err != nil {
		return nil, "", false
	}
	c, err := decodeCommit(raw)
	if err != nil || c.Hash.String() != revision {
		return nil, "", false
	}
	return c, dir, true
}

func decodeCommit(raw []byte) (*object.Commit, error) {
	obj := &plumbing.MemoryObject{}
	obj.SetType(plumbing.CommitObject)
	if _, err := obj.Write(raw); err != nil {
		return nil, err
	}
	c := &object.Commit{}
	if err := c.Decode(obj); err != nil {
		return nil, err
	}
	return c, nil
}

func encodeCommit(c *object.Commit) ([]byte, error) {
	obj := &plumbing.MemoryObject{}
	if err := c.Encode(obj); err != nil {
		return nil, err
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// writeSnapshot writes c's tree to the cache unless it is there already.
// The tree is written to a temporary directory renamed into place, so a
// snapshot directory is complete from the moment it exists; when several
// writers race, the first rename wins and the others use its result.
func (s *Source) writeSnapshot(ctx context.Context, c *object.Commit) (string, error) {
	revision := c.Hash.String()
	dir := s.snapshotDir(revision)
	if err := os.MkdirAll(s.cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("snapshot %s: %w", revision, err)
	}
	raw, err := encodeCommit(c)
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", revision, err)
	}
	if err := writeFileAtomic(s.commitFile(revision), raw); err != nil {
		return "", fmt.Errorf("snapshot %s: %w", revision, err)
	}
	if isDir(dir) {
		return dir, nil
	}
	tree, err := c.Tree()
	if err != nil {
		return "", fmt.Errorf("snapshot %s: tree: %w", revision, err)
	}
	tmp, err := os.MkdirTemp(s.cacheDir, tmpPrefix+revision+"-")
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", revision, err)
	}
	defer os.RemoveAll(tmp) // a no-op after a successful rename
	if err := writeTree(ctx, tree, tmp); err != nil {
		return "", fmt.Errorf("snapshot %s: %w", revision, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("snapshot %s: %w", revision, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if isDir(dir) {
			return dir, nil // another writer was first
		}
		return "", fmt.Errorf("snapshot %s: %w", revision, err)
	}
	return dir, nil
}

// tmpPrefix starts the names of snapshots being written.
const tmpPrefix = ".tmp-"

// writeTree writes tree's files into dir. All writes go through an os.Root,
// so no path or symlink in the tree can make them land outside dir, and
// symlinks are made last, so no file is written through one.
func writeTree(ctx context.Context, tree *object.Tree, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var links []*object.File
	err = tree.Files().ForEach(func(f *object.File) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := checkTreePath(f.Name); err != nil {
			return err
		}
		perm := fs.FileMode(0o644)
		switch f.Mode {
		case filemode.Symlink:
			links = append(links, f)
			return nil
		case filemode.Executable:
			perm = 0o755
		}
		if d := path.Dir(f.Name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("%s: %w", f.Name, err)
			}
		}
		return writeBlob(root, f, perm)
	})
	if err != nil {
		return err
	}
	for _, f := range links {
		target, err := f.Contents()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		if d := path.Dir(f.Name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("%s: %w", f.Name, err)
			}
		}
		if err := root.Symlink(target, f.Name); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return nil
}

func writeBlob(root *os.Root, f *object.File, perm fs.FileMode) error {
	r, err := f.Reader()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	defer r.Close()
	w, err := root.OpenFile(f.Name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	return nil
}

// checkTreePath refuses tree paths git itself would refuse: empty, ".", ".."
// or ".git" elements, absolute paths.
func checkTreePath(name string) error {
	if name == "" || strings.HasPrefix(name, "/") {
		return fmt.Errorf("tree path %q is not relative", name)
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == "" || elem == "." || elem == ".." || strings.EqualFold(elem, ".git") {
			return fmt.Errorf("tree path %q has a forbidden element %q", name, elem)
		}
	}
	return nil
}

// writeFileAtomic writes data to a temporary file renamed to name.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), tmpPrefix+filepath.Base(name)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// Prune removes every snapshot from the cache but those of the revisions in
// keep, and leftovers of interrupted writes older than an hour.
func (s *Source) Prune(keep ...string) error { return PruneDir(s.cacheDir, keep...) }

// PruneDir removes every snapshot from the cache dir but those of the
// revisions in keep, and leftovers of interrupted writes older than an hour.
func PruneDir(cacheDir string, keep ...string) error {
	s := &Source{cacheDir: cacheDir}
	kept := make(map[string]bool, len(keep))
	for _, k := range keep {
		kept[k] = true
	}
	entries, err := os.ReadDir(s.cacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prune %s: %w", s.cacheDir, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			info, err := e.Info()
			if err != nil || time.Since(info.ModTime()) < time.Hour {
				continue
			}
		case fullSHA.MatchString(strings.TrimSuffix(name, ".commit")):
			if kept[strings.TrimSuffix(name, ".commit")] {
				continue
			}
		default:
			continue // not ours
		}
		if err := os.RemoveAll(filepath.Join(s.cacheDir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("prune %s: %w", s.cacheDir, errors.Join(errs...))
	}
	return nil
}
