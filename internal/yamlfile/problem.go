// Package yamlfile is convoy's one strict loader for the YAML files people
// write by hand: fleet.yaml and the agent's config. Decode parses exactly
// one document and decodes it into a Go struct by its yaml tags, refusing
// unknown fields, values of the wrong kind and duplicate keys, and bounding
// what aliases may expand to; the caller then checks meaning with the
// returned Doc, which locates every field. Every problem is reported at
// once, each as file:line: field: message.
package yamlfile

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one mistake in a file, located by file, line and field.
type Problem struct {
	File    string // file name as given to Decode, e.g. "fleet.yaml"
	Line    int    // 1-based line of the offending key or value
	Field   string // YAML path, e.g. "spec.rollout.waves[0].clusters[2]"; empty for the whole document
	Message string // what is wrong or what was expected
}

// String formats p as "<file>:<line>: <field>: <message>".
func (p Problem) String() string {
	if p.Field == "" {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Field, p.Message)
}

// Error holds every problem of a file, ordered by line.
type Error struct {
	Problems []Problem
}

// Error returns one line per problem.
func (e *Error) Error() string { return strings.Join(e.Strings(), "\n") }

// Strings returns the problems formatted, one per element.
func (e *Error) Strings() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.String()
	}
	return out
}

// Doc is a decoded file: where each field was written, which fields were
// present and which already had a problem, and the problems so far.
type Doc struct {
	file     string
	lines    map[string]int  // field path → line
	present  map[string]bool // written and not null
	failed   map[string]bool // decoding reported a problem there
	keys     map[string][]string
	problems []Problem
}

func newDoc(file string) *Doc {
	return &Doc{file: file, lines: map[string]int{}, present: map[string]bool{}, failed: map[string]bool{}, keys: map[string][]string{}}
}

// Addf records a problem of the field at path, at the line the field was
// written on or, when it is absent, its nearest written parent's. Newlines
// are escaped so that every problem stays one line of output.
func (d *Doc) Addf(path, format string, args ...any) {
	d.addAt(d.Line(path), path, format, args...)
}

func (d *Doc) addAt(line int, path, format string, args ...any) {
	if line < 1 {
		line = 1
	}
	d.problems = append(d.problems, Problem{
		File:    d.file,
		Line:    line,
		Field:   oneLine(path),
		Message: oneLine(fmt.Sprintf(format, args...)),
	})
}

func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// Line is the line the field at path was written on; for an absent field,
// its nearest written parent's; 1 for the document.
func (d *Doc) Line(path string) int {
	for p := path; ; p = parent(p) {
		if l, ok := d.lines[p]; ok {
			return l
		}
		if p == "" {
			return 1
		}
	}
}

// Has reports whether the field at path is written and not null.
func (d *Doc) Has(path string) bool { return d.present[path] }

// Failed reports whether decoding the field at path reported a problem,
// so that checks of its meaning do not report it again.
func (d *Doc) Failed(path string) bool { return d.failed[path] }

// Keys lists the keys of the mapping at path, in file order: for checks
// of maps that report in the order the file reads.
func (d *Doc) Keys(path string) []string { return d.keys[path] }

// Err returns the problems found, ordered by line, or nil. Within a line,
// what decoding found comes first, then what the caller's checks found,
// each in the order found.
func (d *Doc) Err() error {
	if len(d.problems) == 0 {
		return nil
	}
	ps := append([]Problem(nil), d.problems...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return &Error{Problems: ps}
}

// parent strips the last element of a field path: "a.b[2]" → "a.b",
// `a["x.y"]` → "a", "a.b" → "a", "a" → "".
func parent(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndex(p, "["); i >= 0 {
			// A quoted key may hold '[': find the bracket that opens it.
			if q := strings.LastIndex(p, `["`); q >= 0 && strings.HasPrefix(p[q:], `["`) && strings.HasSuffix(p, `"]`) {
				return p[:q]
			}
			return p[:i]
		}
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}
