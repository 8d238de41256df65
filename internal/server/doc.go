// Package server is convoy's HTTP front: the GitHub webhook (this file's
// neighbours), and, with the agent, health, metrics and status.
package server
