package commands

import "github.com/spf13/cobra"

func newRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the agent: Git watch, webhooks, rollouts (not built yet)",
		RunE:  notBuilt("convoy run"),
	}
}
