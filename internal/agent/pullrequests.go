package agent

// Pull requests planned before they merge.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/rollout"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/trust"
)

// planPR plans a pull request's head (refs/pull/N/head), judged by the
// rules of its base, and reports it on the pull request: a status and one
// comment of convoy's own, edited in place. Pull requests from forks or
// from authors without write access are planned only when the config says
// so.
func (a *Agent) planPR(ctx context.Context, pr int) error {
	owner, repo, ok := strings.Cut(a.cfg.GitHub.Repo, "/")
	if !ok {
		return fmt.Errorf("github.repo %q: expected OWNER/REPO", a.cfg.GitHub.Repo)
	}
	gh, err := a.githubFor(owner, repo)
	if err != nil {
		return err
	}
	ch, err := gh.PullRequestChange(ctx, pr)
	if err != nil {
		return err
	}
	if !a.cfg.PullRequests.PlanUntrusted {
		trusted := !ch.PullRequest.Fork
		if trusted {
			role, err := gh.Permission(ctx, ch.PullRequest.Author)
			if err != nil {
				return err
			}
			trusted = change.IsWriter(role)
		}
		if !trusted {
			a.log.Info("pull request plan skipped", "pr", pr, "author", ch.PullRequest.Author, "fork", ch.PullRequest.Fork, "reason", errUntrustedPullRequest)
			return nil
		}
	}
	hist, err := a.history(ctx, fmt.Sprintf("refs/pull/%d/head", pr))
	if err != nil {
		return err
	}
	head, base := ch.Revision, ch.PullRequest.BaseSHA
	if _, err := hist.Commit(head); err != nil {
		return fmt.Errorf("pull request #%d: head %s is not in refs/pull/%d/head yet: %w", pr, source.Short(head), pr, err)
	}
	if _, err := hist.Commit(base); err != nil {
		return fmt.Errorf("pull request #%d: base %s is not on the branch: %w", pr, source.Short(base), err)
	}
	// Pull-request snapshots live apart from the rollout's, which are
	// pruned after each rollout while a plan may be reading its own.
	cache := filepath.Join(a.cfg.WorkDir, "pull-requests")
	snap, err := hist.Snapshot(ctx, head, cache)
	if err != nil {
		return err
	}
	defer func() {
		if err := source.PruneDir(cache, snap.Revision); err != nil { // plans run one at a time
			a.log.Warn("prune pull-request snapshots", "error", err)
		}
	}()
	f, err := fleet.Load(snap.Dir)
	if err != nil {
		return err
	}
	targetRules, err := trust.Load(trust.OriginBase, head, snap.Dir)
	if err != nil {
		return err
	}
	pinned, err := a.pinnedRules(ctx)
	if err != nil {
		return err
	}
	j := &trust.Judge{History: hist, Fixed: ch, Teams: gh, Pinned: pinned, SnapshotDir: filepath.Join(a.cfg.WorkDir, "bases")}
	basis, err := j.For(ctx, base, head, targetRules)
	if err != nil {
		return err
	}
	plan, err := a.driver.Planner.Plan(ctx, rollout.PlanInput{RepoDir: snap.Dir, Revision: head, Fleet: f, Now: a.clock.Now(),
		Basis: func(context.Context, *fleet.Cluster) (*trust.Basis, error) { return basis, nil }})
	if err != nil {
		return err
	}
	return rollout.ReportPlan(ctx, gh, pr, basis.Change, plan.Document())
}
