package commands

import "github.com/spf13/cobra"

func newPolicyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "policy",
		Short: "Evaluate or test Rego policies (not built yet)",
		RunE:  notBuilt("convoy policy"),
	}
}
