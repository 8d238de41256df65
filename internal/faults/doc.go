// Package faults holds convoy's fault-injection tests: real control planes,
// the real git smart-HTTP server and the GitHub stand-in, with faults put
// between them and the agent (an API server that is down or slow, an agent
// killed with SIGKILL, a failing git server, GitHub errors, rate limits and
// slowness, two agents writing the same records). Each test asserts the end
// state of every cluster's record and objects.
//
// The package has no code of its own; `go test ./internal/faults/` runs it.
package faults
