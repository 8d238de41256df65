package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/rollout"
	"github.com/convoy-gitops/convoy/internal/source"
)

type planFlags struct {
	repo, revision, now, output, kubeconfig string
	worktree                                bool
	policyDirs                              []string
	change                                  changeFlags
}

func newPlanCmd() *cobra.Command {
	var fl planFlags
	cmd := &cobra.Command{
		Use:   "plan --repo DIR [--revision REV] [--base REV] [--change FILE | --github-repo O/R [--pr N]] [--github-api URL] [--now RFC3339] [-o text|json|markdown]",
		Short: "Render and evaluate every cluster, in wave order, without applying",
		Long: `Plan renders every cluster of the fleet and evaluates the change against the
policies, cluster by cluster in wave order. The overall verdict is deny if any
cluster denies, else hold if any holds, else allow.

What is planned is one commit, read from the repository's object store
(--revision: HEAD by default, or anything git accepts: a branch, a tag, a
short SHA, HEAD~1), never the work tree. --worktree plans the work tree as it
is instead, labelled uncommitted and with no change: no approval applies to it.
A directory that is no git repository is planned as it is, with --change.

The change is judged by the rules of a trusted base, never by its own: the
policies/, CODEOWNERS and fleet.yaml's policy data, windows, time zone,
change source, environments and capacities of --base (default: the
revision's first parent; with --pr, the pull request's base). Every commit
between base and revision is judged on its own. What the change edits of those
rules is listed as its governance, and needs the approvals of a major change.

The change comes from --change FILE, from GitHub (--github-repo, or the base's
spec.change.source: github), or from the commits' trailers. With --pr N the
plan is for that pull request before it merges (render the PR's head with
--repo/--revision); its result is reported on the pull request as the commit
status convoy/plan and one comment of convoy's own, updated in place. When
GitHub cannot be read, every cluster is held: no approval is ever invented.

Exit codes: 0 allow, 1 deny, 3 hold, 2 error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPlan(cmd, fl) },
	}
	f := cmd.Flags()
	f.StringVar(&fl.repo, "repo", "", "config repository: directory or Git URL")
	f.StringVar(&fl.revision, "revision", "", "commit to plan: HEAD (default), a branch, a tag, a SHA, HEAD~1…")
	f.BoolVar(&fl.worktree, "worktree", false, "plan the work tree as it is, uncommitted changes included, with no change (unreviewed)")
	fl.change.register(cmd)
	f.StringVar(&fl.kubeconfig, "kubeconfig", "", "kubeconfig with a context per cluster: adds each reachable cluster's live diff (server-side dry-run)")
	f.StringVar(&fl.now, "now", "", "evaluate at this time (RFC 3339) instead of the clock")
	f.StringArrayVar(&fl.policyDirs, "policies", nil, "extra policy directory (repeatable)")
	f.StringVarP(&fl.output, "output", "o", "text", "output format: text, json or markdown")
	return cmd
}

func runPlan(cmd *cobra.Command, fl planFlags) error {
	ctx := cmd.Context()
	switch fl.output {
	case "text", "json", "markdown":
	default:
		return withCode(ExitError, fmt.Errorf("--output %q: expected text, json or markdown", fl.output))
	}
	now, err := parseNow(fl.now)
	if err != nil {
		return withCode(ExitError, err)
	}
	co, err := openRepo(ctx, repoOptions{repo: fl.repo, revision: fl.revision, worktree: fl.worktree, allowInsecure: fl.change.insecure})
	if err != nil {
		return withCode(ExitError, err)
	}
	g, err := judge(ctx, co, fl.change)
	if err != nil {
		return withCode(ExitError, err)
	}
	gh := g.gh
	planner := &rollout.Planner{PolicyDirs: fl.policyDirs}
	in := rollout.PlanInput{RepoDir: co.Dir, Revision: co.Revision, Fleet: co.Fleet, Change: g.basis.Change, Now: now, Basis: g.basisOf}
	if fl.kubeconfig != "" {
		in.Live = (&rollout.Clusters{Kubeconfig: fl.kubeconfig}).Connect(co.Fleet.Name)
		in.Warn = func(msg string) { fmt.Fprintf(cmd.ErrOrStderr(), "convoy: %s\n", msg) }
	}
	plan, err := planner.Plan(ctx, in)
	if err != nil {
		return withCode(ExitError, err)
	}
	doc := plan.Document()
	doc.Uncommitted = co.Worktree
	if err := writePlan(cmd.OutOrStdout(), fl.output, doc, co.label()); err != nil {
		return withCode(ExitError, err)
	}
	if gh != nil && fl.change.pr != 0 {
		if err := rollout.ReportPlan(ctx, gh, fl.change.pr, plan.Change, doc); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "convoy: report plan on pull request #%d: %v\n", fl.change.pr, err)
		}
	}
	switch doc.Verdict {
	case policy.Deny:
		return withCode(ExitDeny, nil)
	case policy.Hold:
		return withCode(ExitHold, nil)
	}
	return nil
}

func writePlan(w io.Writer, format string, doc rollout.PlanDoc, label string) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "markdown":
		_, err := io.WriteString(w, rollout.Markdown(doc))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tCLUSTER\tVERDICT\tOBJECTS\tMESSAGES")
	for _, c := range doc.Clusters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", c.Wave, c.Name, c.Verdict, c.Objects, strings.Join(rollout.MessageLines(c), "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range rollout.AnalysisLines(doc) {
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(w, "plan for %s (%s change): %s\n", label, rollout.CategoryOf(doc.Change), doc.Verdict); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, rulesLine(doc))
	return err
}

// rulesLine says which rules judged the plan: a base's, pinned ones, or the
// revision's own (bootstrap), and how many commits the change carries.
func rulesLine(doc rollout.PlanDoc) string {
	seen := map[string]bool{}
	var parts []string
	commits := 0
	for _, c := range doc.Clusters {
		commits = max(commits, len(c.Commits))
		var what string
		switch c.Rules {
		case "base":
			what = "the rules of " + source.Short(c.Base)
		case "pinned":
			what = "the pinned rules (governance.dir)"
		default:
			what = "its own rules (bootstrap: no trusted base)"
		}
		if !seen[what] {
			seen[what] = true
			parts = append(parts, what)
		}
	}
	line := "judged by " + strings.Join(parts, ", ")
	if commits > 1 {
		line += fmt.Sprintf("; carries %d commits, each judged on its own", commits)
	}
	return line
}
