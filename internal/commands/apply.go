package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/rollout"
	"github.com/convoy-gitops/convoy/internal/source"
)

type applyFlags struct {
	repo, revision, kubeconfig, now, output string
	allowEmpty                              bool
	policyDirs                              []string
	change                                  changeFlags
}

func newApplyCmd() *cobra.Command {
	var fl applyFlags
	cmd := &cobra.Command{
		Use:   "apply --repo DIR|URL [--revision REV] [--base REV] [--kubeconfig F] [--change FILE] [--now RFC3339] [--allow-empty]",
		Short: "Run one rollout, wave by wave, with the same gates as the agent",
		Long: `Apply renders every cluster, evaluates the policies, dry-runs every object on
every cluster, then applies wave by wave: a wave starts only when the previous
one is healthy (and baked). Progress goes to stderr, the summary to stdout.

What is applied is one commit read from the repository's object store
(--revision: HEAD by default, or anything git accepts); a work tree with
uncommitted changes is refused unless --revision names the commit. The change
is judged by the rules of --base (default: the first parent), as convoy plan
does.

Exit codes: 0 done, 1 denied or failed, 3 held, 2 error (bad input,
unreachable cluster, an object the API server rejects).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runApply(cmd, fl) },
	}
	f := cmd.Flags()
	f.StringVar(&fl.repo, "repo", "", "config repository: directory or Git URL")
	f.StringVar(&fl.revision, "revision", "", "commit to roll out: HEAD (default), a branch, a tag, a SHA, HEAD~1…")
	f.StringVar(&fl.kubeconfig, "kubeconfig", "", "kubeconfig file with a context per cluster (default: $KUBECONFIG, ~/.kube/config)")
	fl.change.register(cmd)
	f.StringVar(&fl.now, "now", "", "evaluate policies at this time (RFC 3339) instead of the clock")
	f.BoolVar(&fl.allowEmpty, "allow-empty", false, "let an empty render prune everything convoy applied")
	f.StringArrayVar(&fl.policyDirs, "policies", nil, "extra policy directory (repeatable)")
	f.StringVarP(&fl.output, "output", "o", "text", "summary format: text or json")
	return cmd
}

func runApply(cmd *cobra.Command, fl applyFlags) error {
	ctx := cmd.Context()
	if fl.output != "text" && fl.output != "json" {
		return withCode(ExitError, fmt.Errorf("--output %q: expected text or json", fl.output))
	}
	now, err := parseNow(fl.now)
	if err != nil {
		return withCode(ExitError, err)
	}
	if fl.change.pr != 0 {
		return withCode(ExitError, errors.New("--pr: apply rolls out merged revisions; use convoy plan --pr N for pull requests"))
	}
	co, err := openRepo(ctx, repoOptions{repo: fl.repo, revision: fl.revision, clean: true, allowInsecure: fl.change.insecure})
	if err != nil {
		return withCode(ExitError, err)
	}
	if co.Revision == "" {
		return withCode(ExitError, fmt.Errorf("--repo %s: not the root of a git repository; a rollout needs a commit to record", fl.repo))
	}
	g, err := judge(ctx, co, fl.change)
	if err != nil {
		return withCode(ExitError, err)
	}
	prog := newProgress(cmd.ErrOrStderr())
	defer prog.Stop()
	driver := &rollout.Driver{
		Planner:    &rollout.Planner{PolicyDirs: fl.policyDirs},
		Clusters:   &rollout.Clusters{Kubeconfig: fl.kubeconfig},
		Snapshot:   co.snapshotAt,
		Agent:      agentIdentity(),
		AllowEmpty: fl.allowEmpty,
	}
	req := rollout.Request{
		PlanInput: rollout.PlanInput{RepoDir: co.Dir, Revision: co.Revision, Fleet: co.Fleet, Change: g.basis.Change, Now: now, Basis: g.basisOf},
		Progress:  prog.Event,
	}
	if g.gh != nil {
		req.Deployments = &rollout.Deployments{API: g.gh}
	}
	_, out, err := driver.Rollout(ctx, req)
	prog.Stop()
	if out != nil {
		if werr := writeOutcome(cmd.OutOrStdout(), fl.output, out); werr != nil {
			return withCode(ExitError, werr)
		}
	}
	return rolloutExit(out, err)
}

// rolloutExit maps a rollout's result to the documented exit codes.
func rolloutExit(out *rollout.Outcome, err error) error {
	var rejected *apply.RejectedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &rejected):
		return withCode(ExitError, err)
	case errors.Is(err, rollout.ErrHeld):
		return withCode(ExitHold, err)
	case out == nil:
		return withCode(ExitError, err)
	case out.Result == rollout.Denied || out.Result == rollout.Failed && !out.Untouched():
		return withCode(ExitDeny, err)
	default:
		// Failed before any write: a cluster could not be reached or read.
		return withCode(ExitError, err)
	}
}

// snapshotAt checks out another revision of the same repository, for
// rollback.
func (co *checkout) snapshotAt(ctx context.Context, revision string) (string, error) {
	snap, err := co.History.Snapshot(ctx, revision, co.cacheDir)
	if err != nil {
		return "", err
	}
	return snap.Dir, nil
}

func writeOutcome(w io.Writer, format string, out *rollout.Outcome) error {
	if format == "json" {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "WAVE\tCLUSTER\tACTION\tAPPLIED\tPRUNED\tTIME\n")
	for _, c := range out.Clusters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", c.Wave, c.Name, c.Action, c.Applied, c.Pruned, c.Duration.Round(100*time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "rollout of %s: %s\n", source.Short(out.Revision), out.Result)
	return err
}

// agentIdentity names the writer in cluster records.
func agentIdentity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("convoy-cli@%s", host)
}

// parseNow parses --now; empty means the clock.
func parseNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--now %q: expected RFC 3339, e.g. 2026-11-25T10:00:00+08:00", s)
	}
	return t, nil
}
