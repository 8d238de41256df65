// Package metrics owns convoy's Prometheus metrics: their names, labels and
// buckets, and the one registry the agent serves at /metrics.
//
// Callers record events through methods named after what happened
// (RolloutFinished, ObserveClusterApply, PolicyDecision, …) and never touch a
// collector. Every method is safe on a nil *Metrics and then does nothing, so
// code paths without metrics (the CLI, most tests) need no checks.
//
// Label values must come from bounded sets: results, verdicts, fleet cluster
// and wave names, policy packages, HTTP status codes. A value taken from
// outside input (a webhook header, say) must be bounded by the caller first.
package metrics
