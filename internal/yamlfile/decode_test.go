package yamlfile_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/yamlfile"
)

type item struct {
	Name string            `yaml:"name"`
	Wait yamlfile.Duration `yaml:"wait"`
}

type file struct {
	Kind   string            `yaml:"kind"`
	Count  int               `yaml:"count"`
	Big    int64             `yaml:"big"`
	On     *bool             `yaml:"on"`
	Items  []item            `yaml:"items"`
	Labels map[string]string `yaml:"labels"`
	Data   map[string]any    `yaml:"data"`
	Ref    *item             `yaml:"ref"`

	note string // not part of the file
}

// problems decodes data into a file and returns it with its problems.
func problems(t *testing.T, data string) (*file, *yamlfile.Doc, []string) {
	t.Helper()
	var f file
	doc, _ := yamlfile.Decode("f.yaml", []byte(data), "Thing", &f)
	err := doc.Err()
	if err == nil {
		return &f, doc, nil
	}
	var ye *yamlfile.Error
	if !errors.As(err, &ye) {
		t.Fatalf("Err() = %T, want *yamlfile.Error", err)
	}
	if ye.Error() != strings.Join(ye.Strings(), "\n") {
		t.Errorf("Error() is not one line per problem: %q", ye.Error())
	}
	return &f, doc, ye.Strings()
}

func TestDecodeValues(t *testing.T) {
	f, doc, ps := problems(t, `kind: Thing
count: 3
big: 9000000000
on: false
items:
- {name: a, wait: 90s}
- name: b
labels: {z: "1", a: two}
data: {n: 2, f: 1.5, list: [x, true, null], huge: 18446744073709551615}
`)
	if ps != nil {
		t.Fatalf("problems: %v", ps)
	}
	want := &file{Kind: "Thing", Count: 3, Big: 9000000000, On: new(bool),
		Items:  []item{{Name: "a", Wait: yamlfile.Duration{Duration: 90 * time.Second}}, {Name: "b"}},
		Labels: map[string]string{"z": "1", "a": "two"},
		Data:   map[string]any{"n": int64(2), "f": 1.5, "list": []any{"x", true, nil}, "huge": json.Number("18446744073709551615")},
	}
	if diff := cmp.Diff(want, f, cmp.AllowUnexported(file{})); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	if got := doc.Keys("labels"); !cmp.Equal(got, []string{"z", "a"}) {
		t.Errorf("Keys(labels) = %v, want file order [z a]", got)
	}
	for path, line := range map[string]int{"items[1].name": 7, "items[1].wait": 7, "items[0].wait": 6, "labels.a": 8, "items": 5, "ref.name": 1, "": 1} {
		if got := doc.Line(path); got != line {
			t.Errorf("Line(%q) = %d, want %d", path, got, line)
		}
	}
	if !doc.Has("items[0].wait") || doc.Has("items[1].wait") || doc.Has("ref") {
		t.Errorf("Has: items[0].wait %v, items[1].wait %v, ref %v; want true, false, false",
			doc.Has("items[0].wait"), doc.Has("items[1].wait"), doc.Has("ref"))
	}
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty", "", []string{"f.yaml:1: empty file, expected a Thing document"}},
		{"not a mapping", "- a\n", []string{"f.yaml:1: expected a mapping with kind, count, big, on, items, labels, data and ref, got a sequence"}},
		{"two documents", "kind: a\n---\nkind: b\n", []string{"f.yaml:2: a second YAML document; f.yaml holds one Thing document"}},
		{"malformed", "kind: a\n  count: 1\n", []string{"f.yaml:2: malformed YAML: mapping values are not allowed in this context"}},
		{"every problem at once", `kind: [a]
count: two
on: yes
items:
- {name: a, wait: soon, extra: 1}
- {name: b, wait: -1s}
- x
labels: [a]
ref: 3
kind: b
`, []string{
			"f.yaml:1: kind: expected a string, got a sequence",
			`f.yaml:2: count: expected a whole number, got "two"`,
			`f.yaml:3: on: expected true or false, got "yes"`,
			`f.yaml:5: items[0].wait: "soon" is not a duration, expected e.g. 90s, 2m or 1h30m`,
			"f.yaml:5: items[0].extra: unknown field, expected one of name, wait",
			`f.yaml:6: items[1].wait: "-1s" is negative`,
			`f.yaml:7: items[2]: expected a mapping, got "x"`,
			"f.yaml:8: labels: expected a mapping, got a sequence",
			`f.yaml:9: ref: expected a mapping, got "3"`,
			"f.yaml:10: kind: duplicate key (first defined at line 1)",
		}},
		{"quoted keys", "labels: {\"a b\": [x]}\ndata: {\"k.y\": .nan}\n", []string{
			`f.yaml:1: labels["a b"]: expected a string, got a sequence`,
			`f.yaml:2: data.k.y: .nan is not a JSON number`,
		}},
		{"merge keys", "base: &b {name: a}\nitems:\n- <<: *b\n  wait: 1s\n- <<: 3\n", []string{
			"f.yaml:1: base: unknown field, expected one of kind, count, big, on, items, labels, data, ref",
			"f.yaml:5: items[1]: a merge key (<<) needs a mapping or a sequence of mappings",
		}},
		{"alias cycle", "data: &d {self: *d}\n", []string{"f.yaml:1: data.self: an alias refers to a mapping that contains it"}},
		{"alias bomb", "data:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n  e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
			[]string{"f.yaml:2: data.d[8][7][2][9]: the document expands to too many values through aliases"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, got := problems(t, tt.yaml)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAddfLocatesFields: a caller's problem lands on its field's line, an
// absent field's on its nearest written parent's, and problems come out
// ordered by line, the decoder's first within a line.
func TestAddfLocatesFields(t *testing.T) {
	var f file
	doc, ok := yamlfile.Decode("f.yaml", []byte("kind: Thing\nitems:\n- {name: a}\n- name: b\n  wait: 1x\n"), "Thing", &f)
	if !ok {
		t.Fatal("Decode refused a mapping")
	}
	doc.Addf("items[1].name", "taken")
	doc.Addf("items[0].wait", "missing")
	doc.Addf("items[1].wait", "checked again")
	doc.Addf("ref.name", "missing")
	if !doc.Failed("items[1].wait") || doc.Failed("items[1].name") {
		t.Errorf("Failed: items[1].wait %v, items[1].name %v; want true, false", doc.Failed("items[1].wait"), doc.Failed("items[1].name"))
	}
	var ye *yamlfile.Error
	if !errors.As(doc.Err(), &ye) {
		t.Fatalf("Err() = %v", doc.Err())
	}
	want := []string{
		"f.yaml:1: ref.name: missing",
		"f.yaml:3: items[0].wait: missing",
		"f.yaml:4: items[1].name: taken",
		`f.yaml:5: items[1].wait: "1x" is not a duration, expected e.g. 90s, 2m or 1h30m`,
		"f.yaml:5: items[1].wait: checked again",
	}
	if diff := cmp.Diff(want, ye.Strings()); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
