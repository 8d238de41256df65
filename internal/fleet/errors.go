package fleet

import (
	"fmt"
	"strings"
)

// Problem is one mistake in a fleet.yaml, located by file, line and field.
type Problem struct {
	File    string // file name as given to Parse, e.g. "fleet.yaml"
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

// ValidationError is returned by Load and Parse when fleet.yaml is malformed
// or invalid; it holds every problem found, ordered by line.
type ValidationError struct {
	Problems []Problem
}

// Error returns one line per problem.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
