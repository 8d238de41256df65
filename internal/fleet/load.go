package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	"go.yaml.in/yaml/v3"

	// Time zones must resolve the same on every machine, including
	// distroless images without /usr/share/zoneinfo.
	_ "time/tzdata"
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
	d := newDecoder(file, len(data))
	var f *Fleet
	if top, ok := d.document(data); ok {
		f = d.fleet(top, repo)
	}
	if len(d.problems) > 0 {
		sort.SliceStable(d.problems, func(i, j int) bool { return d.problems[i].Line < d.problems[j].Line })
		return nil, &ValidationError{Problems: d.problems}
	}
	return f, nil
}

// document parses data as exactly one YAML document and returns its
// top-level value.
func (d *decoder) document(data []byte) (top value, ok bool) {
	// The YAML parser is third-party code fed with outside input: a panic in
	// it is a malformed file, not a crash.
	defer func() {
		if r := recover(); r != nil {
			d.addf(1, "", "YAML parser failed: %v", r)
			ok = false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.addf(1, "", "empty file, expected a %s document", Kind)
		} else {
			d.yamlError(data, err)
		}
		return value{}, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.yamlError(data, err)
		return value{}, false
	case len(extra.Content) > 0 && !(value{node: extra.Content[0]}).null():
		d.addf(extra.Line, "", "a second YAML document; %s holds one %s document", FileName, Kind)
		return value{}, false
	}
	if len(doc.Content) == 0 {
		d.addf(1, "", "empty file, expected a %s document", Kind)
		return value{}, false
	}
	top = d.resolve("", doc.Content[0])
	if top.null() {
		d.addf(top.line, "", "empty document, expected a %s document", Kind)
		return value{}, false
	}
	if top.node.Kind != yaml.MappingNode {
		d.addf(top.line, "", "expected a mapping with apiVersion, kind, metadata and spec, got %s", describe(top.node))
		return value{}, false
	}
	return top, true
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// parserProblems are the messages of libyaml's parser, as opposed to its
// scanner: their line is counted from 0.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlError turns a parser error into one problem at the line of the
// mistake. yaml/v3 reports a parser error at the line where the enclosing
// block began, counted from 0 (so "line 5" for a bad key at line 14), while
// yaml/v2, the same libyaml port, reports the problem's own position: the
// file is parsed again with v2 to find it.
func (d *decoder) yamlError(data []byte, err error) {
	msg := err.Error()
	var x any
	if err2 := yamlv2.Unmarshal(data, &x); err2 != nil && strings.HasPrefix(err2.Error(), "yaml: ") {
		msg = err2.Error()
	}
	line := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if parserProblems[msg] {
			line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		line = badCharLine(data)
		if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
			line = anchorLine(data, m[1])
		}
	}
	d.addf(line, "", "malformed YAML: %s", msg)
}

// anchorLine is the line of the first alias *name, or 1.
func anchorLine(data []byte, name string) int {
	i := bytes.Index(data, []byte("*"+name))
	if i < 0 {
		return 1
	}
	return 1 + bytes.Count(data[:i], []byte("\n"))
}

// badCharLine is the line of the first character YAML does not allow, for
// errors the parser reports without a line; 1 when there is none.
func badCharLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 ||
			r < 0x20 && r != '\t' && r != '\n' && r != '\r' ||
			r >= 0x7f && r <= 0x9f && r != 0x85 {
			return line
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return 1
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
