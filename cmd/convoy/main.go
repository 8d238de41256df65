// Command convoy is the GitOps reconciler for fleets of Kubernetes clusters
// under change management. The work lives in internal/commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/convoy-gitops/convoy/internal/commands"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := commands.ExecuteContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
