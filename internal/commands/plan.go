package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/rollout"
)

// planOutput is the JSON of convoy plan (DESIGN.md §5).
type planOutput struct {
	Revision string         `json:"revision"`
	Verdict  policy.Verdict `json:"verdict"`
	Change   *change.Change `json:"change"`
	Clusters []planCluster  `json:"clusters"`
}

type planCluster struct {
	Name    string           `json:"name"`
	Wave    string           `json:"wave"`
	Verdict policy.Verdict   `json:"verdict"`
	Objects int              `json:"objects"`
	Deny    []policy.Message `json:"deny"`
	Hold    []policy.Message `json:"hold"`
	Warn    []policy.Message `json:"warn"`
	Diff    *policy.Diff     `json:"diff"`
}

type planFlags struct {
	repo, revision, now, output, kubeconfig string
	policyDirs                              []string
	change                                  changeFlags
}

func newPlanCmd() *cobra.Command {
	var fl planFlags
	cmd := &cobra.Command{
		Use:   "plan --repo DIR [--revision REV] [--change FILE | --github-repo O/R [--pr N]] [--github-api URL] [--now RFC3339] [-o text|json|markdown]",
		Short: "Render and evaluate every cluster, in wave order, without applying",
		Long: `Plan renders every cluster of the fleet and evaluates the change against the
policies, cluster by cluster in wave order. The overall verdict is deny if any
cluster denies, else hold if any holds, else allow.

The change comes from --change FILE, from GitHub (--github-repo, or
spec.change.source: github), or from the commit's trailers. With --pr N the
plan is for that pull request before it merges (render the PR's head with
--repo/--revision); its result is reported on the pull request as the commit
status convoy/plan and one comment, updated in place. When GitHub cannot be
read, every cluster is held: no approval is ever invented.

Exit codes: 0 allow, 1 deny, 3 hold, 2 error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPlan(cmd, fl) },
	}
	f := cmd.Flags()
	f.StringVar(&fl.repo, "repo", "", "config repository: directory or Git URL")
	f.StringVar(&fl.revision, "revision", "", "revision to plan (default: the directory as it is, or the branch head)")
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
	co, err := openRepo(ctx, fl.repo, fl.revision)
	if err != nil {
		return withCode(ExitError, err)
	}
	gh, err := fl.change.githubClient(co.Fleet)
	if err != nil {
		return withCode(ExitError, err)
	}
	ch, changeErr, err := loadChange(ctx, co, fl.change, gh)
	if err != nil {
		return withCode(ExitError, err)
	}
	planner := &rollout.Planner{PolicyDirs: fl.policyDirs}
	in := rollout.PlanInput{RepoDir: co.Dir, Revision: co.Revision, Fleet: co.Fleet, Change: ch, ChangeErr: changeErr, Now: now}
	if fl.kubeconfig != "" {
		in.Live = connectFunc(&apply.Connector{KubeconfigFile: fl.kubeconfig}, co.Fleet.Name)
		in.Warn = func(msg string) { fmt.Fprintf(cmd.ErrOrStderr(), "convoy: %s\n", msg) }
	}
	plan, err := planner.Plan(ctx, in)
	if err != nil {
		return withCode(ExitError, err)
	}
	doc := planDocument(plan)
	if err := writePlan(cmd.OutOrStdout(), fl.output, doc); err != nil {
		return withCode(ExitError, err)
	}
	if gh != nil && fl.change.pr != 0 {
		if err := reportPlan(ctx, gh, fl.change.pr, ch, doc); err != nil {
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

func planDocument(plan *rollout.Plan) planOutput {
	doc := planOutput{Revision: plan.Revision, Verdict: plan.Verdict(), Change: plan.Change}
	for _, t := range plan.Targets {
		doc.Clusters = append(doc.Clusters, planCluster{
			Name: t.Cluster.Name, Wave: t.Cluster.Wave, Verdict: t.Decision.Verdict, Objects: len(t.Objects),
			Deny: nonNil(t.Decision.Deny), Hold: nonNil(t.Decision.Hold), Warn: nonNil(t.Decision.Warn), Diff: t.Diff,
		})
	}
	return doc
}

func nonNil(m []policy.Message) []policy.Message {
	if m == nil {
		return []policy.Message{}
	}
	return m
}

func writePlan(w io.Writer, format string, doc planOutput) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "markdown":
		_, err := io.WriteString(w, PlanMarkdown(doc))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tCLUSTER\tVERDICT\tOBJECTS\tMESSAGES")
	for _, c := range doc.Clusters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", c.Wave, c.Name, c.Verdict, c.Objects, strings.Join(messageLines(c), "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "plan for %s (%s change): %s\n", short(doc.Revision), categoryOf(doc.Change), doc.Verdict)
	return err
}

func categoryOf(ch *change.Change) string {
	if ch == nil {
		return "unknown"
	}
	return ch.Category
}

func messageLines(c planCluster) []string {
	var out []string
	for _, set := range []struct {
		kind string
		msgs []policy.Message
	}{{"deny", c.Deny}, {"hold", c.Hold}, {"warn", c.Warn}} {
		for _, m := range set.msgs {
			out = append(out, set.kind+": "+m.Msg)
		}
	}
	return out
}

// PlanMarkdown renders a plan for a pull-request comment: a table per wave
// and cluster, then each message.
func PlanMarkdown(doc planOutput) string {
	var b strings.Builder
	icon := map[policy.Verdict]string{policy.Allow: "✅ allow", policy.Hold: "⏸️ hold", policy.Deny: "⛔ deny"}
	fmt.Fprintf(&b, "### convoy plan for `%s`: %s\n\n", short(doc.Revision), icon[doc.Verdict])
	fmt.Fprintf(&b, "Change category: **%s**", categoryOf(doc.Change))
	if doc.Change != nil && len(doc.Change.Approvals) > 0 {
		users := make([]string, len(doc.Change.Approvals))
		for i, a := range doc.Change.Approvals {
			users[i] = "@" + a.User
		}
		fmt.Fprintf(&b, ", approved by %s", strings.Join(users, ", "))
	}
	b.WriteString("\n\n| wave | cluster | verdict | objects | create | update | delete |\n|---|---|---|---|---|---|---|\n")
	for _, c := range doc.Clusters {
		create, update, del := "–", "–", "–"
		if c.Diff != nil {
			create, update, del = fmt.Sprint(len(c.Diff.Create)), fmt.Sprint(len(c.Diff.Update)), fmt.Sprint(len(c.Diff.Delete))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s |\n", c.Wave, c.Name, icon[c.Verdict], c.Objects, create, update, del)
	}
	for _, c := range doc.Clusters {
		lines := messageLines(c)
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n**%s**\n", c.Name)
		for _, l := range lines {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	return b.String()
}

// reportPlan sets the commit status convoy/plan on the pull request's head
// and writes the plan as the pull request's one convoy comment.
func reportPlan(ctx context.Context, gh *change.GitHub, pr int, ch *change.Change, doc planOutput) error {
	if ch == nil || ch.PullRequest == nil {
		return fmt.Errorf("no pull request to report on")
	}
	state, desc := "success", "convoy: allowed on every cluster"
	var first string
	for _, c := range doc.Clusters {
		if lines := messageLines(c); len(lines) > 0 && c.Verdict != policy.Allow && first == "" {
			first = c.Name + ": " + lines[0]
		}
	}
	switch doc.Verdict {
	case policy.Hold:
		state, desc = "pending", "convoy: held — "+first
	case policy.Deny:
		state, desc = "failure", "convoy: denied — "+first
	}
	if err := gh.ReportStatus(ctx, ch.PullRequest.HeadSHA, state, desc, "convoy/plan"); err != nil {
		return err
	}
	return gh.UpsertComment(ctx, pr, change.PlanMarker, change.PlanMarker+"\n"+PlanMarkdown(doc))
}
