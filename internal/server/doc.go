// Package server is convoy's HTTP front: the GitHub webhook, health, metrics
// and status.
//
// The webhook (Webhook, mounted at WebhookPath) verifies and sorts GitHub
// deliveries and hands work to coalescing queues (Queue); it never does the
// work inline. The agent reads the queues: pushes to the tracked branch from
// one, pull-request plans from another, so that plans never wait behind
// rollouts.
package server
