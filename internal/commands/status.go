package commands

import "github.com/spf13/cobra"

func newStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each cluster's applied revision and health (not built yet)",
		RunE:  notBuilt("convoy status"),
	}
}
