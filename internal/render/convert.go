package render

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resource"
)

// toUnstructured returns a resource kustomize built as an unstructured
// object: the one its JSON form decodes to (kyaml's RNode.MarshalJSON, then
// unstructured.UnmarshalJSON). kyaml writes the node as YAML and reads it
// back into a map, and the JSON round trip gives the value types
// unstructured expects (int64, float64). That chain is the definition, but
// it costs four encodings per object, up to a quarter of a render; so the
// common node shapes are converted directly, with the same result, and
// anything else (timestamps, folded scalars, numbers in other notations,
// explicit or custom tags, anchors and aliases, non-string or duplicate
// keys, invalid UTF-8, a missing kind) takes the chain.
func toUnstructured(res *resource.Resource) (*unstructured.Unstructured, error) {
	if n := res.YNode(); n != nil && n.Kind == yaml.MappingNode {
		if v, ok := nodeValue(n, false); ok {
			u := &unstructured.Unstructured{Object: v.(map[string]any)}
			if u.GetKind() != "" { // else the chain reports the missing kind
				return u, nil
			}
		}
	}
	return viaJSON(res)
}

// viaJSON is the definition toUnstructured follows.
func viaJSON(res *resource.Resource) (*unstructured.Unstructured, error) {
	b, err := res.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", res.CurId(), err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("%s: %w", res.CurId(), err)
	}
	return u, nil
}

// YAML short tags (go.yaml.in/yaml/v3).
const (
	tagStr   = "!!str"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagBool  = "!!bool"
	tagNull  = "!!null"
	tagMap   = "!!map"
	tagSeq   = "!!seq"
)

// decimalInt and decimalFloat match the numbers whose value does not
// depend on which of yaml.v3's parsers reads them (no plus sign, base
// prefix, leading zero or underscore).
var (
	decimalInt   = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
	decimalFloat = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)
)

// nodeValue converts n to the value the YAML-then-JSON round trip gives,
// or reports false when n is not a shape it converts with certainty.
// inFlow says that n is inside a flow-style collection.
func nodeValue(n *yaml.Node, inFlow bool) (any, bool) {
	if n.Anchor != "" || n.Style&yaml.TaggedStyle != 0 {
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		if n.ShortTag() != tagMap || len(n.Content)%2 != 0 {
			return nil, false
		}
		inFlow = inFlow || n.Style&yaml.FlowStyle != 0
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Anchor != "" || k.Style&yaml.TaggedStyle != 0 {
				return nil, false
			}
			key, ok := scalarValue(k, true, inFlow)
			if !ok {
				return nil, false
			}
			s, ok := key.(string)
			if !ok {
				return nil, false
			}
			if _, dup := m[s]; dup {
				return nil, false // yaml.v3 refuses it; the chain says how
			}
			val, ok := nodeValue(v, inFlow)
			if !ok {
				return nil, false
			}
			m[s] = val
		}
		return m, true
	case yaml.SequenceNode:
		if n.ShortTag() != tagSeq {
			return nil, false
		}
		inFlow = inFlow || n.Style&yaml.FlowStyle != 0
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, ok := nodeValue(c, inFlow)
			if !ok {
				return nil, false
			}
			l[i] = v
		}
		return l, true
	case yaml.ScalarNode:
		return scalarValue(n, false, inFlow)
	}
	return nil, false
}

// scalarValue converts a scalar as yaml.v3 writes it (choosing its tag and
// style) and reads it back, then as JSON does: a string, an int64, a
// float64, a bool or nil.
func scalarValue(n *yaml.Node, isKey, inFlow bool) (any, bool) {
	const quoted = yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
	// yaml.v3 does not write every folded scalar back as it read it.
	if !utf8.ValidString(n.Value) || n.Style&yaml.FoldedStyle != 0 {
		return nil, false
	}
	// The tag the value has when read back, following the encoder: an
	// explicit tag is dropped when the value implies it, and a string that
	// would read as something else is quoted.
	var tag string
	switch {
	case n.Tag == "":
		if n.Style&quoted != 0 {
			return n.Value, true
		}
		tag = implicitTag(n.Value)
	case n.Tag == "!":
		return nil, false
	default:
		st := n.ShortTag()
		if st == tagStr { // written plain, or quoted when it reads as another type
			return n.Value, true
		}
		rt := implicitTag(n.Value)
		switch {
		case rt == st && n.Style&quoted != 0:
			return n.Value, true // the tag is dropped; the quotes stay
		case rt == st:
			tag = rt
		default:
			return nil, false // written with its tag
		}
	}
	if tag == tagStr {
		return n.Value, true
	}
	// A plain scalar that is not a string: the emitter quotes an empty one
	// in a flow collection or as a key, and writes a multi-line one as a
	// block; both would read back as strings.
	if n.Value == "" && (inFlow || isKey) || strings.Contains(n.Value, "\n") {
		return nil, false
	}
	switch tag {
	case tagNull:
		return nil, true
	case tagBool:
		switch n.Value {
		case "true", "True", "TRUE":
			return true, true
		case "false", "False", "FALSE":
			return false, true
		}
	case tagInt:
		if decimalInt.MatchString(n.Value) {
			if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
				return i, true
			}
		}
	case tagFloat:
		if decimalFloat.MatchString(n.Value) {
			f, err := strconv.ParseFloat(n.Value, 64)
			if err != nil {
				return nil, false
			}
			// As JSON writes and Kubernetes reads it: an integer when
			// the written number parses as one.
			b, err := json.Marshal(f)
			if err != nil {
				return nil, false
			}
			if i, err := strconv.ParseInt(string(b), 10, 64); err == nil {
				return i, true
			}
			if g, err := strconv.ParseFloat(string(b), 64); err == nil {
				return g, true
			}
		}
	}
	return nil, false
}

// implicitTag returns the tag yaml.v3 resolves a plain scalar to.
func implicitTag(v string) string {
	n := yaml.Node{Kind: yaml.ScalarNode, Value: v}
	return n.ShortTag()
}
