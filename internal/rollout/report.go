package rollout

import (
	"context"
	"fmt"
	"strings"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/source"
)

// PlanDoc is the JSON of convoy plan (convoy plan -o json), also posted on pull
// requests by the agent.
type PlanDoc struct {
	Revision string         `json:"revision"`
	Verdict  policy.Verdict `json:"verdict"`
	Change   *change.Change `json:"change"`
	Clusters []PlanCluster  `json:"clusters"`
	// Uncommitted: the plan is of a work tree as it is (convoy plan
	// --worktree), with no revision and no change.
	Uncommitted bool `json:"uncommitted,omitempty"`

	trustedBots []string // whose approvals count besides writers'
}

// PlanCluster is one cluster of a PlanDoc.
type PlanCluster struct {
	Name    string           `json:"name"`
	Wave    string           `json:"wave"`
	Verdict policy.Verdict   `json:"verdict"`
	Objects int              `json:"objects"`
	Deny    []policy.Message `json:"deny"`
	Hold    []policy.Message `json:"hold"`
	Warn    []policy.Message `json:"warn"`
	Diff    *policy.Diff     `json:"diff"`
	// Category is the strictest category of what the cluster receives.
	Category string `json:"category"`
	// Base is the trusted base whose rules judged the cluster ("" at
	// bootstrap); Rules says where they came from: base, pinned or
	// bootstrap.
	Base  string `json:"base"`
	Rules string `json:"rules"`
	// Commits are the commits the cluster receives, newest first.
	Commits []string `json:"commits"`
	// Governance names what the change edits of the rules that judge it.
	Governance []string `json:"governance"`
	// Analysis lists the analyses that will gate the cluster in its wave,
	// each as "name (condition, every interval)".
	Analysis []string `json:"analysis,omitempty"`
}

// AnalysisLines say which analyses gate which wave, one line per wave
// with any: "wave canary: staging: error-rate (< 0.05, every 10s)".
func AnalysisLines(doc PlanDoc) []string {
	var out []string
	var wave string
	var parts []string
	flush := func() {
		if len(parts) > 0 {
			out = append(out, "analysis gates wave "+wave+": "+strings.Join(parts, "; "))
		}
		parts = nil
	}
	for _, c := range doc.Clusters {
		if c.Wave != wave {
			flush()
			wave = c.Wave
		}
		if len(c.Analysis) > 0 {
			parts = append(parts, c.Name+": "+strings.Join(c.Analysis, ", "))
		}
	}
	flush()
	return out
}

// Document is the plan as convoy plan prints it.
func (plan *Plan) Document() PlanDoc {
	doc := PlanDoc{Revision: plan.Revision, Verdict: plan.Verdict(), Change: plan.Change}
	for _, t := range plan.Targets {
		pc := PlanCluster{
			Name: t.Cluster.Name, Wave: t.Cluster.Wave, Verdict: t.Decision.Verdict, Objects: len(t.Objects),
			Deny: nonNilMessages(t.Decision.Deny), Hold: nonNilMessages(t.Decision.Hold), Warn: nonNilMessages(t.Decision.Warn), Diff: t.Diff,
			Category: CategoryOf(t.Change), Base: t.Base, Rules: t.Origin, Commits: []string{}, Governance: []string{},
		}
		if t.Change != nil {
			for _, c := range t.Change.Commits {
				pc.Commits = append(pc.Commits, c.Revision)
			}
			if len(pc.Commits) == 0 {
				pc.Commits = append(pc.Commits, t.Change.Revision)
			}
			pc.Governance = append(pc.Governance, t.Change.Governance...)
		}
		for _, a := range t.Analyses {
			pc.Analysis = append(pc.Analysis, fmt.Sprintf("%s (%s, every %s)", a.Name, a.Condition.Text, a.Interval))
		}
		if doc.trustedBots == nil {
			doc.trustedBots = t.TrustedBots
		}
		doc.Clusters = append(doc.Clusters, pc)
	}
	return doc
}

func nonNilMessages(m []policy.Message) []policy.Message {
	if m == nil {
		return []policy.Message{}
	}
	return m
}

// CategoryOf is the change's category, "unknown" without a change.
func CategoryOf(ch *change.Change) string {
	if ch == nil {
		return "unknown"
	}
	return ch.Category
}

// MessageLines are the cluster's messages as "deny: …", "hold: …", "warn: …".
func MessageLines(c PlanCluster) []string {
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

// Markdown renders a plan for a pull-request comment: a table per wave
// and cluster, then each message.
func Markdown(doc PlanDoc) string {
	var b strings.Builder
	icon := map[policy.Verdict]string{policy.Allow: "✅ allow", policy.Hold: "⏸️ hold", policy.Deny: "⛔ deny"}
	fmt.Fprintf(&b, "### convoy plan for `%s`: %s\n\n", source.Short(doc.Revision), icon[doc.Verdict])
	fmt.Fprintf(&b, "Change category: **%s**", CategoryOf(doc.Change))
	if counted := change.Counted(doc.Change, doc.trustedBots); len(counted) > 0 {
		users := make([]string, len(counted))
		for i, a := range counted {
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
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s |\n", MarkdownText(c.Wave), MarkdownText(c.Name), icon[c.Verdict], c.Objects, create, update, del)
	}
	if lines := AnalysisLines(doc); len(lines) > 0 {
		b.WriteString("\n")
		for _, l := range lines {
			fmt.Fprintf(&b, "- %s\n", MarkdownText(l))
		}
	}
	for _, c := range doc.Clusters {
		lines := MessageLines(c)
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n**%s**", MarkdownText(c.Name))
		if len(c.Commits) > 1 {
			fmt.Fprintf(&b, " (carries %d commits since %s)", len(c.Commits), MarkdownText(source.Short(c.Base)))
		}
		b.WriteString("\n")
		for _, l := range lines {
			fmt.Fprintf(&b, "- %s\n", MarkdownText(l))
		}
	}
	return b.String()
}

// markdownEscapes neutralises what a text could make of a comment: links
// and images, HTML, emphasis, code, tables, headings, and @mentions (a
// message quoting "@org/everyone" must not notify anyone).
var markdownEscapes = strings.NewReplacer(
	"\\", "\\\\", "`", "\\`", "*", "\\*", "_", "\\_", "{", "\\{", "}", "\\}", "[", "\\[", "]", "\\]",
	"(", "\\(", ")", "\\)", "#", "\\#", "!", "\\!", "|", "\\|", "~", "\\~",
	"<", "&lt;", ">", "&gt;", "&", "&amp;", "@", "&#64;", "\r", " ", "\n", " ",
)

// MarkdownText is s as literal text in GitHub Markdown, on one line.
func MarkdownText(s string) string { return markdownEscapes.Replace(s) }

// PlanReporter is the part of a forge's API a plan is reported through:
// change.GitHub implements it.
type PlanReporter interface {
	ReportStatus(ctx context.Context, sha, state, description, statusContext string) error
	UpsertComment(ctx context.Context, pr int, marker, body string) error
}

// ReportPlan sets the commit status convoy/plan on the pull request's head
// and writes the plan as the pull request's one convoy comment.
func ReportPlan(ctx context.Context, gh PlanReporter, pr int, ch *change.Change, doc PlanDoc) error {
	if ch == nil || ch.PullRequest == nil {
		return fmt.Errorf("no pull request to report on")
	}
	state, desc := "success", "convoy: allowed on every cluster"
	var first string
	for _, c := range doc.Clusters {
		if lines := MessageLines(c); len(lines) > 0 && c.Verdict != policy.Allow && first == "" {
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
	return gh.UpsertComment(ctx, pr, change.PlanMarker, change.PlanMarker+"\n"+Markdown(doc))
}
