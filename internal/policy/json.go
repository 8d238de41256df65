package policy

import (
	"bytes"
	"encoding/json"
	"runtime"
	"slices"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// decodeInput decodes an input document straight into a Rego value equal to
// what ParseInput's encoding/json decoding (numbers as json.Number) and
// conversion give, without the Go maps and slices in between, which are most
// of `convoy policy eval`'s time on a large render; the objects of the
// document are decoded on up to GOMAXPROCS goroutines.
//
// ok is false for any document it does not read exactly as they do, which
// ParseInput then reads the slow way, errors and all: invalid JSON, a key
// twice in an object, nesting deeper than maxDecodeDepth, a document that is
// not an object or lacks a required field, a number ast.InterfaceToValue
// rejects. Strings with escapes or invalid UTF-8 are unquoted by
// encoding/json itself.
func decodeInput(data []byte) (v ast.Value, ok bool) {
	d := newDecoder(data, 0)
	d.space()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return nil, false
	}
	d.pos++
	d.depth = 1
	var spans []span // of the objects' elements
	objectsAt := -1  // position of the objects' pair
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		return nil, false // lacks every required field
	}
	for {
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, false
		}
		key, ok := d.string()
		if !ok || !d.colon() {
			return nil, false
		}
		var val *ast.Term
		if d.space(); key.Value == ast.String("objects") && d.pos < len(d.data) && d.data[d.pos] == '[' {
			if spans, ok = d.elements(); !ok {
				return nil, false
			}
			objectsAt = len(d.c.pairs)
		} else if val, ok = d.value(); !ok {
			return nil, false
		}
		d.c.pairs = append(d.c.pairs, [2]*ast.Term{key, val})
		if !d.comma() {
			if d.pos >= len(d.data) || d.data[d.pos] != '}' {
				return nil, false
			}
			d.pos++
			break
		}
	}
	if d.space(); d.pos != len(d.data) || duplicateKeys(d.c.pairs) {
		return nil, false
	}
	if objectsAt >= 0 {
		objects, ok := decodeElements(data, spans)
		if !ok {
			return nil, false
		}
		d.c.pairs[objectsAt][1] = ast.NewTerm(ast.NewArray(objects...))
	}
	doc := d.c.object(0)
	if !hasRequiredFields(doc.Value.(ast.Object)) {
		return nil, false
	}
	return doc.Value, true
}

// maxDecodeDepth is the deepest nesting decodeInput reads; encoding/json
// reads deeper ones, up to its own limit.
const maxDecodeDepth = 1000

// decoder reads JSON values into terms with a converter's shared strings,
// numbers, objects and lists.
type decoder struct {
	data    []byte
	pos     int
	depth   int
	c       *converter
	items   []*ast.Term // elements of the lists being read, innermost last
	numbers map[string]*ast.Term
}

func newDecoder(data []byte, n int) *decoder {
	return &decoder{data: data, c: newConverter(n), numbers: map[string]*ast.Term{}}
}

// span is where a value is in the document.
type span struct{ start, end int }

// decodeElements decodes the elements of a list at spans, on up to
// GOMAXPROCS goroutines.
func decodeElements(data []byte, spans []span) ([]*ast.Term, bool) {
	terms := make([]*ast.Term, len(spans))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(spans)/minObjectsPerWorker))
	oks := make([]bool, workers)
	decode := func(w int) {
		lo, hi := w*len(spans)/workers, (w+1)*len(spans)/workers
		d := newDecoder(data, hi-lo)
		for i := lo; i < hi; i++ {
			d.pos, d.depth = spans[i].start, 2
			t, ok := d.value()
			if !ok || d.pos != spans[i].end {
				return
			}
			terms[i] = t
		}
		oks[w] = true
	}
	parallel(workers, decode)
	return terms, !slices.Contains(oks, false)
}

// elements finds the spans of the elements of the list at d.pos without
// decoding them, and moves past it. Each span is decoded later, and must
// then be one value: only if all are is the list valid JSON.
func (d *decoder) elements() ([]span, bool) {
	d.pos++ // [
	var spans []span
	if d.space(); d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return spans, true
	}
	for {
		d.space()
		start := d.pos
		if !d.skip() {
			return nil, false
		}
		spans = append(spans, span{start, d.pos})
		if !d.comma() {
			if d.pos >= len(d.data) || d.data[d.pos] != ']' {
				return nil, false
			}
			d.pos++
			return spans, true
		}
	}
}

// skip moves past the value at d.pos, finding only where it ends: at the
// end of its string or of its outermost brackets, or for a number or
// literal at the next comma, bracket or space.
func (d *decoder) skip() bool {
	depth := 0
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case '"':
			i := d.pos + 1
			for i < len(d.data) && d.data[i] != '"' {
				if d.data[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(d.data) {
				return false
			}
			d.pos = i + 1
			if depth == 0 {
				return true
			}
		case '{', '[':
			depth++
			d.pos++
		case '}', ']':
			if depth == 0 {
				return true // the end of the list, after a number or literal
			}
			depth--
			d.pos++
			if depth == 0 {
				return true
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return true
			}
			d.pos++
		default:
			d.pos++
		}
	}
	return false
}

// space moves past JSON whitespace.
func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// colon moves past the colon after an object's key.
func (d *decoder) colon() bool {
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ':' {
		d.pos++
		return true
	}
	return false
}

// comma moves past the comma before another element or field and reports
// whether there is one; otherwise it stays at what follows the last one.
func (d *decoder) comma() bool {
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ',' {
		d.pos++
		return true
	}
	return false
}

// value decodes the value at d.pos, after optional whitespace.
func (d *decoder) value() (*ast.Term, bool) {
	d.space()
	if d.pos >= len(d.data) {
		return nil, false
	}
	switch b := d.data[d.pos]; {
	case b == '{':
		return d.object()
	case b == '[':
		return d.list()
	case b == '"':
		return d.string()
	case b == 't':
		return d.literal("true", ast.InternedTerm(true))
	case b == 'f':
		return d.literal("false", ast.InternedTerm(false))
	case b == 'n':
		return d.literal("null", ast.InternedNullTerm)
	case b == '-' || '0' <= b && b <= '9':
		return d.number()
	}
	return nil, false
}

func (d *decoder) object() (*ast.Term, bool) {
	if d.depth++; d.depth > maxDecodeDepth {
		return nil, false
	}
	d.pos++ // {
	start := len(d.c.pairs)
	if d.space(); d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return d.c.object(start), true
	}
	for {
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, false
		}
		key, ok := d.string()
		if !ok || !d.colon() {
			return nil, false
		}
		val, ok := d.value()
		if !ok {
			return nil, false
		}
		d.c.pairs = append(d.c.pairs, [2]*ast.Term{key, val})
		if !d.comma() {
			if d.pos >= len(d.data) || d.data[d.pos] != '}' || duplicateKeys(d.c.pairs[start:]) {
				return nil, false
			}
			d.pos++
			d.depth--
			return d.c.object(start), true
		}
	}
}

func (d *decoder) list() (*ast.Term, bool) {
	if d.depth++; d.depth > maxDecodeDepth {
		return nil, false
	}
	d.pos++ // [
	start := len(d.items)
	if d.space(); d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return d.c.array(nil), true
	}
	for {
		val, ok := d.value()
		if !ok {
			return nil, false
		}
		d.items = append(d.items, val)
		if !d.comma() {
			if d.pos >= len(d.data) || d.data[d.pos] != ']' {
				return nil, false
			}
			d.pos++
			d.depth--
			t := d.c.array(d.items[start:])
			clear(d.items[start:])
			d.items = d.items[:start]
			return t, true
		}
	}
}

// string decodes the string at d.pos. Those with escapes or bytes beyond
// ASCII that are not valid UTF-8 are unquoted by encoding/json, which
// replaces what is invalid.
func (d *decoder) string() (*ast.Term, bool) {
	start := d.pos
	plain := true // ASCII without escapes
	i := start + 1
	for ; i < len(d.data) && d.data[i] != '"'; i++ {
		switch b := d.data[i]; {
		case b == '\\':
			plain = false
			i++
		case b < 0x20:
			return nil, false
		case b >= utf8.RuneSelf:
			plain = false
		}
	}
	if i >= len(d.data) {
		return nil, false
	}
	d.pos = i + 1
	raw := d.data[start+1 : i]
	if plain || bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return d.c.strBytes(raw), true
	}
	var s string
	if err := json.Unmarshal(d.data[start:d.pos], &s); err != nil {
		return nil, false
	}
	return d.c.str(s), true
}

// number decodes the JSON number at d.pos as json.Number, which
// ast.InterfaceToValue converts.
func (d *decoder) number() (*ast.Term, bool) {
	data, start, i := d.data, d.pos, d.pos
	digits := func() bool {
		j := i
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		return i > j
	}
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	d.pos = i
	text := data[start:i]
	t, ok := d.numbers[string(text)]
	if !ok {
		v, err := ast.InterfaceToValue(json.Number(text))
		if err != nil {
			return nil, false
		}
		t = ast.NewTerm(v)
		d.numbers[string(text)] = t
	}
	return t, true
}

func (d *decoder) literal(text string, t *ast.Term) (*ast.Term, bool) {
	if len(d.data)-d.pos < len(text) || string(d.data[d.pos:d.pos+len(text)]) != text {
		return nil, false
	}
	d.pos += len(text)
	return t, true
}

// duplicateKeys reports whether an object's pairs have a key twice: their
// key terms are one term per distinct string.
func duplicateKeys(pairs [][2]*ast.Term) bool {
	if len(pairs) <= 16 {
		for i := range pairs {
			for j := range i {
				if pairs[i][0] == pairs[j][0] {
					return true
				}
			}
		}
		return false
	}
	keys := make([]string, len(pairs))
	for i, p := range pairs {
		keys[i] = string(p[0].Value.(ast.String))
	}
	slices.Sort(keys)
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			return true
		}
	}
	return false
}

// hasRequiredFields reports whether doc has every required field, of its
// type: when it does, ParseInput finds no problem.
func hasRequiredFields(doc ast.Object) bool {
	for _, f := range requiredFields {
		var cur ast.Value = doc
		for _, key := range f.path {
			obj, ok := cur.(ast.Object)
			if !ok {
				return false
			}
			t := obj.Get(ast.InternedTerm(key))
			if t == nil {
				return false
			}
			cur = t.Value
		}
		if valueKind(cur) != f.kind {
			return false
		}
	}
	return true
}

// valueKind is jsonKind of a Rego value.
func valueKind(v ast.Value) string {
	switch v.(type) {
	case ast.Null:
		return "null"
	case ast.String:
		return "string"
	case ast.Number:
		return "number"
	case ast.Boolean:
		return "boolean"
	case *ast.Array:
		return "array"
	case ast.Object:
		return "object"
	}
	return ""
}
