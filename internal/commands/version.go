package commands

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// Stamped by the Makefile with -ldflags -X.
var (
	version = "dev"
	commit  = "unknown"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print convoy's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "convoy %s (commit %s, %s)\n", version, commit, runtime.Version())
			return nil
		},
	}
}
