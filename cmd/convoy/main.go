// Command convoy is the GitOps reconciler for fleets of Kubernetes clusters
// under change management. The work lives in internal/commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/convoy-gitops/convoy/internal/commands"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] != "run" {
		shortLived()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := commands.ExecuteContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// shortLived tunes the garbage collector for a command that runs once and
// exits (everything but the agent, `convoy run`): it lets the heap grow to
// five times the live data before collecting, instead of twice, up to a
// soft limit of 1 GiB, past which it collects as usual. Renders, policy
// input conversions and applies allocate a lot of short-lived data; this
// cuts the collector's share of a large render by about a quarter. GOGC
// and GOMEMLIMIT, when set, win.
func shortLived() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}
