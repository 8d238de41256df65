package yamlfile

import (
	"encoding/json"
	"math"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// plain converts free-form YAML to the values encoding/json and OPA take:
// map[string]any, []any, string, bool, nil, int64 for whole numbers (so
// that Rego sees 2, not 2.0), float64 for the rest, and json.Number for whole
// numbers beyond int64. Timestamps and other tagged scalars stay the text
// written in the file.
func (d *decoder) plain(v value) any {
	if v.null() {
		return nil
	}
	d.at(v)
	d.present[v.path] = true
	n := v.node
	switch n.Kind {
	case yaml.MappingNode:
		if !d.enter(v) {
			return nil
		}
		defer delete(d.active, n)
		m := map[string]any{}
		for _, e := range d.entries(v) {
			m[e.key] = d.plain(e.val)
		}
		return m
	case yaml.SequenceNode:
		if !d.enter(v) {
			return nil
		}
		defer delete(d.active, n)
		s := make([]any, 0, len(n.Content))
		for _, c := range d.seq(v) {
			s = append(s, d.plain(c))
		}
		return s
	case yaml.ScalarNode:
		return d.scalar(v)
	}
	d.addf(v.line, v.path, "unsupported YAML node")
	return nil
}

func (d *decoder) scalar(v value) any {
	n := v.node
	switch n.Tag {
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	case "!!int":
		var x any
		if err := n.Decode(&x); err == nil {
			switch x := x.(type) {
			case int:
				return int64(x)
			case int64:
				return x
			case uint64:
				return json.Number(strconv.FormatUint(x, 10))
			}
		}
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil {
			if math.IsInf(f, 0) || math.IsNaN(f) {
				d.addf(v.line, v.path, "%s is not a JSON number", n.Value)
				return nil
			}
			return f
		}
	default:
		return n.Value
	}
	d.addf(v.line, v.path, "%q is not a valid %s", n.Value, n.Tag)
	return nil
}
