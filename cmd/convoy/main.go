// Command convoy is the GitOps reconciler for fleets of Kubernetes clusters
// under change management. The work lives in internal/commands.
package main

import (
	"os"

	"github.com/convoy-gitops/convoy/internal/commands"
)

func main() {
	os.Exit(commands.Execute(os.Args[1:], os.Stdout, os.Stderr))
}
