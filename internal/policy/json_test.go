package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// requiredJSON are the fields every input document needs, to which tests
// add objects and more.
const requiredJSON = `"fleet": "f", "cluster": {"name": "c", "environment": "e"}, "change": {"category": "normal"},
	"now": {"time": "t", "weekday": 1, "hour": 2, "minute": 3}, "windows": []`

// referenceInput decodes a document as encoding/json does with numbers as
// json.Number, and converts it with ast.InterfaceToValue; ok is false when
// encoding/json rejects it.
func referenceInput(t *testing.T, data []byte) (ast.Value, bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, false
	}
	return v, true
}

func TestDecodeInputEqualsEncodingJSON(t *testing.T) {
	varied, err := json.Marshal(variedValue(rand.New(rand.NewPCG(5, 6)), 6))
	if err != nil {
		t.Fatal(err)
	}
	objects, err := json.Marshal(variedObjects(3*minObjectsPerWorker + 7))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{
		"no objects":     `{` + requiredJSON + `, "objects": []}`,
		"varied objects": `{` + requiredJSON + `, "objects": ` + string(objects) + `, "extra": ` + string(varied) + `}`,
		"strings": `{` + requiredJSON + `, "objects": [{"a": "\"\\\/\b\f\n\r\t\u00e9\u0000\ud83d\ude00", "b": "é😀", "c": "\ud800", "d": "\udc00\u0041",
			"e": "` + "\xff\xfe" + `", "f": "` + "a\xc3" + `", "g": "\u2028", "h": "` + "\xed\xa0\x80" + `", "\u006b": 1}]}`,
		"numbers":            `{` + requiredJSON + `, "objects": [[0, -0, 1, -1, 0.5, -0.5e-3, 1E2, 1e+2, 1e-2, 12345678901234567890123, 1.0, 9007199254740993, 1e308, 4e-320]]}`,
		"literals and space": " \t\r\n{" + requiredJSON + ` ,"objects" : [ true , false , null , [ ] , { } , [null], {"a":[{}]} ] } ` + "\n",
		"scalar objects":     `{` + requiredJSON + `, "objects": [1, "x", null, true, -2.5e3, [1, [2, [3]]]]}`,
		"repeated shapes":    `{` + requiredJSON + `, "objects": [` + strings.Repeat(`{"a": {"b": [1, 2, {"c": "d"}], "e": {}}, "f": [[], {}]},`, 2*minObjectsPerWorker) + `{}]}`,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			want, ok := referenceInput(t, []byte(doc))
			if !ok {
				t.Fatal("encoding/json rejects the document")
			}
			got, ok := decodeInput([]byte(doc))
			if !ok {
				t.Fatal("decodeInput declined the document")
			}
			sameValue(t, "decodeInput", want, got)
			parsed, err := ParseInput("in.json", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			sameValue(t, "ParseInput", want, parsed)
		})
	}
}

// TestDecodeInputDeclines checks that decodeInput leaves to encoding/json
// what it does not read exactly as encoding/json does.
func TestDecodeInputDeclines(t *testing.T) {
	docs := map[string]string{
		"duplicate key":           `{` + requiredJSON + `, "objects": [{"a": 1, "a": 2}]}`,
		"duplicate objects":       `{` + requiredJSON + `, "objects": [], "objects": [1]}`,
		"duplicate key, large":    `{` + requiredJSON + `, "objects": [{` + strings.Repeat(`"a": 1, `, 20) + `"b": 2}]}`,
		"data after the document": `{` + requiredJSON + `, "objects": []} {}`,
		"not an object":           `[{` + requiredJSON + `, "objects": []}]`,
		"missing field":           `{"fleet": "f", "objects": []}`,
		"objects not a list":      `{` + requiredJSON + `, "objects": {"a": [1]}}`,
		"field of a wrong type":   `{` + strings.Replace(requiredJSON, `"hour": 2`, `"hour": "2"`, 1) + `, "objects": []}`,
		"deep":                    `{` + requiredJSON + `, "objects": [` + strings.Repeat("[", maxDecodeDepth) + strings.Repeat("]", maxDecodeDepth) + `]}`,
		"invalid escape":          `{` + requiredJSON + `, "objects": ["\x"]}`,
		"control character":       `{` + requiredJSON + `, "objects": ["` + "\n" + `"]}`,
		"leading zero":            `{` + requiredJSON + `, "objects": [01]}`,
		"bad number":              `{` + requiredJSON + `, "objects": [1.]}`,
		"bad literal":             `{` + requiredJSON + `, "objects": [nul]}`,
		"trailing comma":          `{` + requiredJSON + `, "objects": [1,]}`,
		"missing comma":           `{` + requiredJSON + `, "objects": [1 2]}`,
		"unclosed":                `{` + requiredJSON + `, "objects": [{"a": [1}]}`,
		"empty":                   ``,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			if v, ok := decodeInput([]byte(doc)); ok {
				t.Errorf("decodeInput = %v, want it to decline", v)
			}
		})
	}
}

// FuzzDecodeInput checks decodeInput against encoding/json on any bytes:
// what it decodes, it decodes as encoding/json and ast.InterfaceToValue do,
// and ParseInput gives what it gives the slow way.
func FuzzDecodeInput(f *testing.F) {
	f.Add([]byte(`{` + requiredJSON + `, "objects": [{"a": "\u00e9\ud800", "b": [1, -0.5e3, true, null, {}]}, 2]}`))
	f.Add([]byte(`{` + requiredJSON + `, "objects": [{"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 2, "template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}}}}]}`))
	f.Add([]byte(`{` + requiredJSON + `, "objects": [{"a": 1, "a": 2}], "x": "` + "\xff" + `"}`))
	f.Add([]byte(`{"objects": [1 , "x" ,[ ]]}`))
	f.Add([]byte(`{"a": [1, "x", [], {"b": null}]}, 3, "\u0041"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// data as a document, and as the objects of one
		for _, doc := range [][]byte{data, []byte(`{` + requiredJSON + `, "objects": [` + string(data) + `]}`)} {
			want, wantOK := referenceInput(t, doc)
			got, ok := decodeInput(doc)
			if ok {
				if !wantOK {
					t.Fatalf("decodeInput = %v, encoding/json rejects the document", got)
				}
				sameValue(t, "decodeInput", want, got)
			}
			fast, fastErr := ParseInput("in.json", doc)
			slow, slowErr := parseInput("in.json", doc)
			if fmt.Sprint(fastErr) != fmt.Sprint(slowErr) {
				t.Fatalf("ParseInput error = %v, want %v", fastErr, slowErr)
			}
			if slowErr == nil {
				sameValue(t, "ParseInput", slow, fast)
			}
		}
	})
}
