package fleet

import "github.com/convoy-gitops/convoy/internal/yamlfile"

// Problem is one mistake in a fleet.yaml, located by file, line and field.
type Problem = yamlfile.Problem

// ValidationError is returned by Load and Parse when fleet.yaml is malformed
// or invalid; it holds every problem found, ordered by line.
type ValidationError = yamlfile.Error
