package commands

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/convoy-gitops/convoy/internal/agent"
	"github.com/convoy-gitops/convoy/internal/metrics"
)

func newRunCmd() *cobra.Command {
	var configFile, logFormat string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the agent: Git watch, webhooks, rollouts, drift correction",
		Long: `Run is the long-running agent. It watches the config repository (polling,
and GitHub push webhooks for an immediate start), plans every new revision,
rolls it out wave by wave (one rollout at a time; a newer commit supersedes
the rest of a rollout after the current wave), re-evaluates held revisions
when their window ends or a review arrives, corrects drift on the fleet's
schedule and plans pull requests. With leader election one replica works
and the others stand by.

HTTP: /healthz /readyz /metrics /hooks/github /api/status and a status page
at /. SIGTERM or SIGINT: stop taking work, finish the cluster being applied,
release the lease, exit 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile == "" {
				return withCode(ExitError, fmt.Errorf("--config: required"))
			}
			cfg, err := agent.LoadConfig(configFile)
			if err != nil {
				return withCode(ExitError, err)
			}
			if logFormat != "" {
				if logFormat != "json" && logFormat != "text" {
					return withCode(ExitError, fmt.Errorf("--log-format %q: expected json or text", logFormat))
				}
				cfg.Log.Format = logFormat
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.Log)
			a, err := agent.New(agent.Options{Config: cfg, Log: log, Metrics: metrics.New()})
			if err != nil {
				return withCode(ExitError, err)
			}
			if err := a.Run(cmd.Context()); err != nil {
				return withCode(ExitError, err)
			}
			log.Info("stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "agent config file (YAML, kind AgentConfig)")
	cmd.Flags().StringVar(&logFormat, "log-format", "", "json or text (overrides the config's log.format)")
	return cmd
}

func newLogger(w io.Writer, c agent.LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
