package fleet

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a fleet.yaml node tree and collects every problem it finds,
// so that one run reports all of them with their lines.
type decoder struct {
	file     string
	problems []Problem
	// budget bounds the nodes visited, so that aliases cannot expand a
	// small file into a huge one ("billion laughs").
	budget    int
	exhausted bool
	// active holds the alias targets being walked, to refuse cycles.
	active map[*yaml.Node]bool
}

func newDecoder(file string, size int) *decoder {
	return &decoder{file: file, budget: 4*size + 10000, active: map[*yaml.Node]bool{}}
}

// addf records a problem. Newlines are escaped so that every problem stays
// one line of output.
func (d *decoder) addf(line int, field, format string, args ...any) {
	if line < 1 {
		line = 1
	}
	d.problems = append(d.problems, Problem{
		File:    d.file,
		Line:    line,
		Field:   oneLine(field),
		Message: oneLine(fmt.Sprintf(format, args...)),
	})
}

func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// value is a node together with its field path. line is where the value is
// written: for an alias, the alias's own line rather than its anchor's.
type value struct {
	path string
	node *yaml.Node // never an alias; nil when absent
	line int
}

// null reports whether v is absent or an explicit YAML null.
func (v value) null() bool {
	return v.node == nil || (v.node.Kind == yaml.ScalarNode && v.node.Tag == "!!null")
}

// resolve follows aliases and spends one unit of the visit budget.
func (d *decoder) resolve(path string, n *yaml.Node) value {
	v := value{path: path, node: n}
	if n == nil {
		return v
	}
	v.line = n.Line
	for hops := 0; v.node != nil && v.node.Kind == yaml.AliasNode; hops++ {
		if hops > 100 {
			v.node = nil
			break
		}
		v.node = v.node.Alias
	}
	d.budget--
	if d.budget < 0 {
		if !d.exhausted {
			d.exhausted = true
			d.addf(v.line, path, "the document expands to too many values through aliases")
		}
		v.node = nil
	}
	return v
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		s := n.Value
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return strconv.Quote(s)
	}
	return "nothing"
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_./-]+$`)

// child is the path of a mapping key; keys that would be ambiguous in a
// dotted path are quoted.
func child(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// entry is one key of a mapping, in file order.
type entry struct {
	key  string
	line int // line of the key
	val  value
}

// entries lists the keys of a mapping in file order, with YAML merge keys
// ("<<") applied and duplicate keys reported. A null value is an empty
// mapping.
func (d *decoder) entries(v value) []entry {
	if v.null() {
		return nil
	}
	n := v.node
	if n.Kind != yaml.MappingNode {
		d.addf(v.line, v.path, "expected a mapping, got %s", describe(n))
		return nil
	}
	if d.active[n] {
		d.addf(v.line, v.path, "an alias refers to a mapping that contains it")
		return nil
	}
	d.active[n] = true
	defer delete(d.active, n)

	var out []entry
	seen := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(v.path, n.Content[i])
		if k.node == nil {
			continue
		}
		if k.node.Kind != yaml.ScalarNode {
			d.addf(k.line, v.path, "expected a string key, got %s", describe(k.node))
			continue
		}
		if k.node.Tag == "!!merge" {
			merges = append(merges, n.Content[i+1])
			continue
		}
		name := k.node.Value
		p := child(v.path, name)
		if first, ok := seen[name]; ok {
			d.addf(k.line, p, "duplicate key (first defined at line %d)", first)
			continue
		}
		seen[name] = k.line
		val := d.resolve(p, n.Content[i+1])
		if val.node != nil && (val.node.Kind == yaml.MappingNode || val.node.Kind == yaml.SequenceNode) {
			// A block collection starts on the line after its key; problems
			// with the whole collection (a missing field, an empty list)
			// read best at the key.
			val.line = k.line
		}
		out = append(out, entry{key: name, line: k.line, val: val})
	}
	// Keys written in the mapping win over merged ones; earlier merges win
	// over later ones.
	for _, m := range merges {
		mv := d.resolve(v.path, m)
		var sources []value
		switch {
		case mv.null():
		case mv.node.Kind == yaml.SequenceNode:
			for _, s := range mv.node.Content {
				sources = append(sources, d.resolve(v.path, s))
			}
		default:
			sources = append(sources, mv)
		}
		for _, s := range sources {
			if s.null() || s.node.Kind != yaml.MappingNode {
				d.addf(mv.line, v.path, "a merge key (<<) needs a mapping or a sequence of mappings")
				continue
			}
			for _, e := range d.entries(s) {
				if _, ok := seen[e.key]; !ok {
					seen[e.key] = e.line
					out = append(out, e)
				}
			}
		}
	}
	return out
}

// object is a mapping with a fixed set of fields.
type object struct {
	path   string
	line   int
	fields map[string]value
}

// object reads a mapping whose keys must be among allowed; unknown keys are
// problems. A null value is an empty object.
func (d *decoder) object(v value, allowed ...string) object {
	o := object{path: v.path, line: v.line, fields: map[string]value{}}
	for _, e := range d.entries(v) {
		if !slices.Contains(allowed, e.key) {
			d.addf(e.line, child(v.path, e.key), "unknown field, expected one of %s", strings.Join(allowed, ", "))
			continue
		}
		o.fields[e.key] = e.val
	}
	return o
}

// get returns the named field; an absent field is a null value at the
// object's line with the field's path.
func (o object) get(name string) value {
	if v, ok := o.fields[name]; ok {
		return v
	}
	return value{path: child(o.path, name), line: o.line}
}

// has reports whether the field is present and not null.
func (o object) has(name string) bool { return !o.get(name).null() }

// str reads a scalar as a string; null is "".
func (d *decoder) str(v value) string {
	if v.null() {
		return ""
	}
	if v.node.Kind != yaml.ScalarNode {
		d.addf(v.line, v.path, "expected a string, got %s", describe(v.node))
		return ""
	}
	return v.node.Value
}

// required reads a string that must be set.
func (d *decoder) required(v value) string {
	s := d.str(v)
	if s == "" && (v.null() || v.node.Kind == yaml.ScalarNode) {
		d.addf(v.line, v.path, "missing")
	}
	return s
}

// boolean reads true or false; null is false.
func (d *decoder) boolean(v value) bool {
	if v.null() {
		return false
	}
	if v.node.Kind != yaml.ScalarNode || v.node.Tag != "!!bool" {
		d.addf(v.line, v.path, "expected true or false, got %s", describe(v.node))
		return false
	}
	var b bool
	if err := v.node.Decode(&b); err != nil {
		d.addf(v.line, v.path, "expected true or false, got %s", describe(v.node))
	}
	return b
}

// integer reads a whole number; null is 0.
func (d *decoder) integer(v value) int {
	if v.null() {
		return 0
	}
	var i int
	if v.node.Kind != yaml.ScalarNode || v.node.Tag != "!!int" || v.node.Decode(&i) != nil {
		d.addf(v.line, v.path, "expected a whole number, got %s", describe(v.node))
		return 0
	}
	return i
}

// duration reads a Go duration such as "90s" or "1h30m"; null is 0. ok is
// false when a problem was reported.
func (d *decoder) duration(v value) (dur time.Duration, ok bool) {
	if v.null() {
		return 0, true
	}
	s := d.str(v)
	if v.node.Kind != yaml.ScalarNode {
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.addf(v.line, v.path, "%q is not a duration, expected e.g. 90s, 2m or 1h30m", s)
		return 0, false
	}
	if dur < 0 {
		d.addf(v.line, v.path, "%q is negative", s)
		return 0, false
	}
	return dur, true
}

// seq reads a sequence; null is empty.
func (d *decoder) seq(v value) []value {
	if v.null() {
		return nil
	}
	if v.node.Kind != yaml.SequenceNode {
		d.addf(v.line, v.path, "expected a sequence, got %s", describe(v.node))
		return nil
	}
	out := make([]value, len(v.node.Content))
	for i, n := range v.node.Content {
		out[i] = d.resolve(index(v.path, i), n)
	}
	return out
}
