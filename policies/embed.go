// Package policies holds convoy's built-in Rego policies (DESIGN.md §4) and
// their tests, which `opa test policies/` runs as they are.
package policies

import "embed"

// FS holds every .rego file of this folder: the policies and their
// _test.rego files. The policy engine skips the tests when evaluating.
//
//go:embed *.rego
var FS embed.FS
