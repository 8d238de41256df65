package policy

// Policies that do not compile: a deny that names each file and line.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// CompileError is a policy that fails to parse or compile. Its message has
// one line per problem: "file:line: code: message".
type CompileError struct {
	Problems []string
	Err      error // the parser's or compiler's error
}

// compileError collects the problems of a parser or compiler error.
func compileError(err error) *CompileError {
	ce := &CompileError{Err: err}
	var astErrs ast.Errors
	if errors.As(err, &astErrs) {
		for _, e := range astErrs {
			if e.Location != nil {
				ce.Problems = append(ce.Problems, fmt.Sprintf("%s:%d: %s: %s", e.Location.File, e.Location.Row, e.Code, e.Message))
			} else {
				ce.Problems = append(ce.Problems, fmt.Sprintf("%s: %s", e.Code, e.Message))
			}
		}
	}
	if len(ce.Problems) == 0 {
		ce.Problems = []string{"compile policies: " + err.Error()}
	}
	return ce
}

func (e *CompileError) Error() string { return strings.Join(e.Problems, "\n") }

// Decision is the result of evaluating every policy for one input.
type Decision struct {
	Verdict Verdict   `json:"verdict"`
	Deny    []Message `json:"deny"`
	Hold    []Message `json:"hold"`
	Warn    []Message `json:"warn"`
}

// Unwrap returns the parser's or compiler's error.
func (e *CompileError) Unwrap() error { return e.Err }
