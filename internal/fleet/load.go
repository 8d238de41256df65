package fleet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	// Time zones must resolve the same on every machine, including
	// distroless images without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/convoy-gitops/convoy/internal/yamlfile"
)

// Load reads and validates <repoDir>/fleet.yaml. Cluster paths must be
// directories inside repoDir. A *ValidationError lists every problem found.
func Load(repoDir string) (*Fleet, error) { return load(repoDir, true) }

// LoadRules is Load without checking that cluster paths exist: for a
// directory of rules (the operator's pinned governance), which holds no
// manifests.
func LoadRules(dir string) (*Fleet, error) { return load(dir, false) }

func load(repoDir string, checkPaths bool) (*Fleet, error) {
	file := filepath.Join(repoDir, FileName)
	// A regular file of bounded size: a symbolic link could read anything
	// on the machine, or never end (/dev/zero).
	st, err := os.Lstat(file)
	if err != nil {
		return nil, fmt.Errorf("read fleet: %w", err)
	}
	switch {
	case !st.Mode().IsRegular():
		return nil, &ValidationError{Problems: []Problem{{File: FileName, Line: 1, Message: "not a regular file: fleet.yaml must be a file, not a symbolic link"}}}
	case st.Size() > MaxFileSize:
		return nil, &ValidationError{Problems: []Problem{{File: FileName, Line: 1, Message: fmt.Sprintf("%d bytes, over the %d byte limit", st.Size(), MaxFileSize)}}}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read fleet: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, &ValidationError{Problems: []Problem{{File: FileName, Line: 1, Message: fmt.Sprintf("over the %d byte limit", MaxFileSize)}}}
	}
	var root *repoRoot
	if checkPaths {
		root = newRepoRoot(repoDir)
	}
	return parse(FileName, data, root)
}

// MaxFileSize caps fleet.yaml.
const MaxFileSize = 1 << 20

// Parse decodes and validates a fleet.yaml held in data; file names it in
// problems. Cluster paths are checked to be directories under repoDir, or
// only to be relative and inside the repository when repoDir is "".
func Parse(file string, data []byte, repoDir string) (*Fleet, error) {
	var repo *repoRoot
	if repoDir != "" {
		repo = newRepoRoot(repoDir)
	}
	return parse(file, data, repo)
}

func parse(file string, data []byte, repo *repoRoot) (*Fleet, error) {
	var ff fleetFile
	doc, ok := yamlfile.Decode(file, data, Kind, &ff)
	var f *Fleet
	if ok {
		f = build(doc, &ff, repo)
	}
	if err := doc.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// repoRoot checks that paths named in fleet.yaml stay inside the repository.
// A nil *repoRoot only checks the path's form.
type repoRoot struct {
	dir  string
	real string // dir with symlinks resolved
	err  error
}

func newRepoRoot(dir string) *repoRoot {
	real, err := filepath.EvalSymlinks(dir)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	return &repoRoot{dir: dir, real: real, err: err}
}

// check cleans a slash-separated relative path p naming a directory and says
// what is wrong with it, if anything.
func (r *repoRoot) check(p string) (clean, problem string) {
	clean, info, problem := r.inside(p)
	if problem == "" && info != nil && !info.IsDir() {
		problem = fmt.Sprintf("%q is not a directory", p)
	}
	return clean, problem
}

// inside cleans a slash-separated relative path p and says what is wrong
// with it, if anything: absolute, leaving the repository (by ".." or through
// a symlink), or missing. info is nil when r is nil or on a problem.
func (r *repoRoot) inside(p string) (clean string, info fs.FileInfo, problem string) {
	if path.IsAbs(p) || filepath.IsAbs(p) || filepath.VolumeName(p) != "" {
		return p, nil, fmt.Sprintf("%q is absolute, expected a directory relative to the repository root", p)
	}
	clean = path.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return clean, nil, fmt.Sprintf("%q leaves the repository", p)
	}
	if r == nil {
		return clean, nil, ""
	}
	if r.err != nil {
		return clean, nil, fmt.Sprintf("cannot check %q: repository: %v", p, r.err)
	}
	full := filepath.Join(r.dir, filepath.FromSlash(clean))
	info, err := os.Stat(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return clean, nil, fmt.Sprintf("%q does not exist in the repository", p)
	case err != nil:
		return clean, nil, fmt.Sprintf("cannot check %q: %v", p, err)
	}
	real, err := filepath.EvalSymlinks(full)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return clean, nil, fmt.Sprintf("cannot check %q: %v", p, err)
	}
	if rel, err := filepath.Rel(r.real, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return clean, nil, fmt.Sprintf("%q resolves through a symlink to outside the repository", p)
	}
	return clean, info, ""
}
