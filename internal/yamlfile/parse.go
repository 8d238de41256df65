package yamlfile

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	"go.yaml.in/yaml/v3"
)

// document parses data as exactly one YAML document and returns its
// top-level value; kind names the document in messages ("a Fleet
// document").
func (d *decoder) document(data []byte, file, kind string) (top value, ok bool) {
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
			d.addf(1, "", "empty file, expected %s document", article(kind))
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
		d.addf(extra.Line, "", "a second YAML document; %s holds one %s document", file, kind)
		return value{}, false
	}
	if len(doc.Content) == 0 {
		d.addf(1, "", "empty file, expected %s document", article(kind))
		return value{}, false
	}
	top = d.resolve("", doc.Content[0])
	if top.null() {
		d.addf(top.line, "", "empty document, expected %s document", article(kind))
		return value{}, false
	}
	return top, true
}

// article prefixes a or an.
func article(s string) string {
	if s != "" && strings.ContainsRune("AEIOUaeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
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
