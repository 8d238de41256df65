package policy_test

import "github.com/open-policy-agent/opa/v1/ast"

// policyInput holds a parsed input document.
type policyInput struct{ v ast.Value }
