package commands

import "github.com/spf13/cobra"

func newPlanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "plan",
		Short: "Render + policy (+ dry-run diff) per cluster, in wave order (not built yet)",
		RunE:  notBuilt("convoy plan"),
	}
}
