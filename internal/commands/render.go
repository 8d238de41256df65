package commands

import "github.com/spf13/cobra"

func newRenderCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "render",
		Short: "Render clusters' manifests (not built yet)",
		RunE:  notBuilt("convoy render"),
	}
}
