package change

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"
)

// PlanMarker is the hidden marker of convoy's plan comment on a pull request.
const PlanMarker = "<!-- convoy:plan -->"

// maxStatusDescription is the longest description GitHub accepts on a commit status.
const maxStatusDescription = 140

// ReportStatus sets the commit status named statusContext (for example
// "convoy/plan") on sha: state is error, failure, pending or success.
func (g *GitHub) ReportStatus(ctx context.Context, sha, state, description, statusContext string) error {
	status := &github.RepoStatus{
		State:       github.String(state),
		Description: github.String(truncate(description, maxStatusDescription)),
		Context:     github.String(statusContext),
	}
	op := fmt.Sprintf("set status %s of %s/%s@%s", statusContext, g.owner, g.repo, sha)
	return g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
		_, resp, err := g.client.Repositories.CreateStatus(ctx, g.owner, g.repo, sha, status)
		return resp, err
	})
}

// UpsertComment keeps one comment holding marker on pull request pr: it edits
// the first comment whose body holds marker, or creates one. body gets marker
// prepended when it does not hold it.
func (g *GitHub) UpsertComment(ctx context.Context, pr int, marker, body string) error {
	if marker == "" {
		return fmt.Errorf("comment on %s: empty marker", g.where(pr))
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	existing, err := g.findComment(ctx, pr, marker)
	if err != nil {
		return err
	}
	comment := &github.IssueComment{Body: github.String(body)}
	if existing != nil {
		if existing.GetBody() == body {
			return nil
		}
		op := fmt.Sprintf("edit comment %d on %s", existing.GetID(), g.where(pr))
		return g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
			_, resp, err := g.client.Issues.EditComment(ctx, g.owner, g.repo, existing.GetID(), comment)
			return resp, err
		})
	}
	return g.do(ctx, "create comment on "+g.where(pr), func(ctx context.Context) (*github.Response, error) {
		_, resp, err := g.client.Issues.CreateComment(ctx, g.owner, g.repo, pr, comment)
		return resp, err
	})
}

// findComment pages through pull request pr's comments for the first holding marker.
func (g *GitHub) findComment(ctx context.Context, pr int, marker string) (*github.IssueComment, error) {
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	op := "list comments of " + g.where(pr)
	for page := 0; page < maxPages; page++ {
		var comments []*github.IssueComment
		var next int
		err := g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			comments, resp, err = g.client.Issues.ListComments(ctx, g.owner, g.repo, pr, opts)
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, c := range comments {
			if strings.Contains(c.GetBody(), marker) {
				return c, nil
			}
		}
		if next == 0 || next == opts.Page {
			break
		}
		opts.Page = next
	}
	return nil, nil
}

// CreateDeployment records a deployment of ref to environment and returns its
// id. It neither merges the default branch into ref nor waits for status
// checks: convoy's own gates decided already.
func (g *GitHub) CreateDeployment(ctx context.Context, ref, environment string, payload map[string]any) (int64, error) {
	req := &github.DeploymentRequest{
		Ref:              github.String(ref),
		Task:             github.String("deploy"),
		AutoMerge:        github.Bool(false),
		RequiredContexts: &[]string{},
		Environment:      github.String(environment),
		Description:      github.String("convoy rollout of " + ref),
	}
	if payload != nil {
		req.Payload = payload
	}
	var id int64
	op := fmt.Sprintf("create deployment of %s/%s@%s to %s", g.owner, g.repo, ref, environment)
	err := g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
		d, resp, err := g.client.Repositories.CreateDeployment(ctx, g.owner, g.repo, req)
		if err == nil {
			id = d.GetID()
		}
		return resp, err
	})
	return id, err
}

// SetDeploymentStatus adds a status to deployment id: state is error, failure,
// inactive, in_progress, queued, pending or success.
func (g *GitHub) SetDeploymentStatus(ctx context.Context, id int64, state, description string) error {
	req := &github.DeploymentStatusRequest{
		State:       github.String(state),
		Description: github.String(truncate(description, maxStatusDescription)),
	}
	op := fmt.Sprintf("set status of deployment %d of %s/%s", id, g.owner, g.repo)
	return g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
		_, resp, err := g.client.Repositories.CreateDeploymentStatus(ctx, g.owner, g.repo, id, req)
		return resp, err
	})
}

// truncate shortens s to at most n runes, ending with "…" when cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
