// Package server is convoy's HTTP front: the GitHub webhook, health, metrics
// and status.
//
// The webhook (Webhook, mounted at WebhookPath) verifies and sorts GitHub
// deliveries and hands work to the agent's coalescing queues (package
// queue); it never does the work inline. The agent reads the queues: pushes to the tracked branch from
// one, pull-request plans from another, so that plans never wait behind
// rollouts.
//
// Server (http.go) mounts the webhook beside /healthz (the process is alive),
// /readyz (the agent is ready, 503 with the reason when not, and while
// shutting down), /metrics (Prometheus, from internal/metrics) and the status
// document (status.go) as JSON at /api/status and as a self-refreshing HTML
// page, without JavaScript, at /. Shutdown stops accepting at once and lets
// in-flight requests finish.
package server
