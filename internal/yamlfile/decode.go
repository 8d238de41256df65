package yamlfile

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Decode parses data as exactly one YAML document of kind ("Fleet",
// "AgentConfig") and decodes it into v, a pointer to a struct, by its yaml
// tags:
//
//   - a struct is a mapping whose keys are its fields' tags; any other key
//     is a problem ("unknown field, expected one of …"), and so is a key
//     written twice;
//   - a string takes any scalar, a bool only true or false, an integer
//     only a whole number, a type implementing Scalar its own text;
//   - a slice is a sequence, a map[string]T a mapping, a pointer is nil
//     when the value is absent or null, and any takes the plain values
//     encoding/json would (see plain);
//   - null is the zero value; merge keys (<<) and aliases are followed,
//     within a budget proportional to the file's size.
//
// ok is false when data is not one document holding a mapping: the caller
// then has nothing to check. Problems so far are in the Doc either way.
func Decode(file string, data []byte, kind string, v any) (doc *Doc, ok bool) {
	d := &decoder{Doc: newDoc(file), budget: 4*len(data) + 10000, active: map[*yaml.Node]bool{}}
	top, ok := d.document(data, file, kind)
	if !ok {
		return d.Doc, false
	}
	rv := reflect.ValueOf(v).Elem()
	if top.node.Kind != yaml.MappingNode {
		d.addf(top.line, "", "expected a mapping with %s, got %s", fieldList(rv.Type()), describe(top.node))
		return d.Doc, false
	}
	d.decode(top, rv)
	return d.Doc, true
}

// Scalar is a type written as one YAML scalar, such as a duration. The
// error of DecodeScalar is the problem's message.
type Scalar interface {
	DecodeScalar(text string) error
}

// Duration is a time.Duration written as Go writes one: "90s", "1h30m".
// Negative durations are refused.
type Duration struct{ time.Duration }

// DecodeScalar parses a Go duration.
func (d *Duration) DecodeScalar(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration, expected e.g. 90s, 2m or 1h30m", s)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	d.Duration = v
	return nil
}

// decoder walks a node tree into Go values, recording in its Doc where
// each field is and every problem it finds.
type decoder struct {
	*Doc
	// budget bounds the nodes visited, so that aliases cannot expand a
	// small file into a huge one ("billion laughs").
	budget    int
	exhausted bool
	// active holds the alias targets being walked, to refuse cycles.
	active map[*yaml.Node]bool
}

// addf records a problem found while decoding the field at path.
func (d *decoder) addf(line int, path, format string, args ...any) {
	d.addAt(line, path, format, args...)
	d.failed[path] = true
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

var scalarType = reflect.TypeFor[Scalar]()

// decode decodes v into rv, which it may set.
func (d *decoder) decode(v value, rv reflect.Value) {
	d.at(v)
	if v.null() {
		return
	}
	d.present[v.path] = true
	if rv.CanAddr() && rv.Addr().Type().Implements(scalarType) {
		if s, ok := d.str(v); ok {
			if err := rv.Addr().Interface().(Scalar).DecodeScalar(s); err != nil {
				d.addf(v.line, v.path, "%s", err)
			}
		}
		return
	}
	switch rv.Kind() {
	case reflect.Pointer:
		p := reflect.New(rv.Type().Elem())
		d.decode(v, p.Elem())
		rv.Set(p)
	case reflect.Struct:
		if !d.enter(v) {
			return
		}
		defer delete(d.active, v.node)
		d.object(v, rv)
	case reflect.Slice:
		if !d.enter(v) {
			return
		}
		defer delete(d.active, v.node)
		items := d.seq(v)
		s := reflect.MakeSlice(rv.Type(), len(items), len(items))
		for i, item := range items {
			d.decode(item, s.Index(i))
		}
		rv.Set(s)
	case reflect.Map:
		if !d.enter(v) {
			return
		}
		defer delete(d.active, v.node)
		es := d.entries(v)
		m := reflect.MakeMapWithSize(rv.Type(), len(es))
		for _, e := range es {
			ev := reflect.New(rv.Type().Elem()).Elem()
			d.decode(e.val, ev)
			m.SetMapIndex(reflect.ValueOf(e.key).Convert(rv.Type().Key()), ev)
			d.keys[v.path] = append(d.keys[v.path], e.key)
		}
		rv.Set(m)
	case reflect.String:
		s, _ := d.str(v)
		rv.SetString(s)
	case reflect.Bool:
		rv.SetBool(d.boolean(v))
	case reflect.Int, reflect.Int64, reflect.Int32:
		rv.SetInt(d.integer(v))
	case reflect.Interface:
		if x := d.plain(v); x != nil {
			rv.Set(reflect.ValueOf(x))
		}
	default:
		panic(fmt.Sprintf("yamlfile: cannot decode into %s", rv.Type()))
	}
}

// at records where v is written.
func (d *decoder) at(v value) {
	if v.node != nil {
		d.lines[v.path] = v.line
	}
}

// object decodes a mapping into the struct rv: its keys must be among the
// fields' tags.
func (d *decoder) object(v value, rv reflect.Value) {
	names, index := fields(rv.Type())
	for _, e := range d.entries(v) {
		i, ok := index[e.key]
		if !ok {
			d.at(value{path: Child(v.path, e.key), node: e.val.node, line: e.line})
			d.addf(e.line, Child(v.path, e.key), "unknown field, expected one of %s", strings.Join(names, ", "))
			continue
		}
		d.decode(e.val, rv.Field(i))
	}
}

// fields lists a struct type's YAML names in order and maps each to its
// field's index. Fields without a yaml tag are not part of the file.
func fields(t reflect.Type) (names []string, index map[string]int) {
	index = map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	return names, index
}

// fieldList is "a, b, c and d" for a struct type's fields.
func fieldList(t reflect.Type) string {
	names, _ := fields(t)
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
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

// Child is the path of a mapping key; keys that would be ambiguous in a
// dotted path are quoted.
func Child(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index is the path of a sequence's item.
func Index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

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
		p := Child(v.path, name)
		if first, ok := seen[name]; ok {
			if _, ok := d.lines[p]; !ok {
				d.at(value{path: p, node: k.node, line: k.line})
			}
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

// enter marks the collection v as being walked, for the walk of its
// values; it reports false, with a problem, when v is already being walked:
// an alias that refers to a collection containing it.
func (d *decoder) enter(v value) bool {
	if d.active[v.node] {
		kind := "mapping"
		if v.node.Kind == yaml.SequenceNode {
			kind = "sequence"
		}
		d.addf(v.line, v.path, "an alias refers to a %s that contains it", kind)
		return false
	}
	d.active[v.node] = true
	return true
}

// str reads a scalar as a string; ok is false when v is not a scalar.
func (d *decoder) str(v value) (s string, ok bool) {
	if v.node.Kind != yaml.ScalarNode {
		d.addf(v.line, v.path, "expected a string, got %s", describe(v.node))
		return "", false
	}
	return v.node.Value, true
}

// boolean reads true or false.
func (d *decoder) boolean(v value) bool {
	var b bool
	if v.node.Kind != yaml.ScalarNode || v.node.Tag != "!!bool" || v.node.Decode(&b) != nil {
		d.addf(v.line, v.path, "expected true or false, got %s", describe(v.node))
		return false
	}
	return b
}

// integer reads a whole number.
func (d *decoder) integer(v value) int64 {
	var i int64
	if v.node.Kind != yaml.ScalarNode || v.node.Tag != "!!int" || v.node.Decode(&i) != nil {
		d.addf(v.line, v.path, "expected a whole number, got %s", describe(v.node))
		return 0
	}
	return i
}

// seq reads a sequence.
func (d *decoder) seq(v value) []value {
	if v.node.Kind != yaml.SequenceNode {
		d.addf(v.line, v.path, "expected a sequence, got %s", describe(v.node))
		return nil
	}
	out := make([]value, len(v.node.Content))
	for i, n := range v.node.Content {
		out[i] = d.resolve(Index(v.path, i), n)
	}
	return out
}
