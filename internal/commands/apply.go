package commands

import "github.com/spf13/cobra"

func newApplyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "apply",
		Short: "Run one rollout, wave by wave (not built yet)",
		RunE:  notBuilt("convoy apply"),
	}
}
