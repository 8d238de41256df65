package change

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"
)

// PlanMarker is the hidden marker of convoy's plan comment on a pull request.
const PlanMarker = "<!-- convoy:plan -->"

// maxStatusDescription is the longest description GitHub accepts on a commit status.
const maxStatusDescription = 140

// ReportStatus sets the commit status named statusContext (for example
// "convoy/plan") on sha: state is error, failure, pending or success. It
// posts only when the state or the description differs from the status
// last posted, or, the first time, from the newest one GitHub holds: GitHub
// keeps at most 1,000 statuses per commit and context, and refuses more.
func (g *GitHub) ReportStatus(ctx context.Context, sha, state, description, statusContext string) error {
	description = truncate(description, maxStatusDescription)
	key := sha + "\x00" + statusContext
	want := state + "\x00" + description
	g.mu.Lock()
	last, known := g.statuses[key]
	g.mu.Unlock()
	if !known {
		var err error
		if last, err = g.latestStatus(ctx, sha, statusContext); err != nil {
			return err
		}
	}
	if last == want {
		g.rememberStatus(key, want)
		return nil
	}
	status := &github.RepoStatus{
		State:       github.String(state),
		Description: github.String(description),
		Context:     github.String(statusContext),
	}
	op := fmt.Sprintf("set status %s of %s/%s@%s", statusContext, g.owner, g.repo, sha)
	err := g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
		_, resp, err := g.client.Repositories.CreateStatus(ctx, g.owner, g.repo, sha, status)
		return resp, err
	})
	if err == nil {
		g.rememberStatus(key, want)
	}
	return err
}

func (g *GitHub) rememberStatus(key, value string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.statuses) >= maxRememberedStatuses {
		clear(g.statuses) // revisions move on; rereading one costs a request
	}
	g.statuses[key] = value
}

// maxRememberedStatuses bounds the statuses a long-running agent remembers.
const maxRememberedStatuses = 1000

// latestStatus returns "state\x00description" of the newest status of
// statusContext on sha, "" when it has none. GitHub lists statuses newest
// first; the first page is enough for convoy's own contexts, which it posts
// only on change.
func (g *GitHub) latestStatus(ctx context.Context, sha, statusContext string) (string, error) {
	var statuses []*github.RepoStatus
	op := fmt.Sprintf("list statuses of %s/%s@%s", g.owner, g.repo, sha)
	err := g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
		var resp *github.Response
		var err error
		statuses, resp, err = g.client.Repositories.ListStatuses(ctx, g.owner, g.repo, sha, &github.ListOptions{PerPage: 100})
		return resp, err
	})
	if err != nil {
		return "", err
	}
	for _, st := range statuses {
		if st.GetContext() == statusContext {
			return st.GetState() + "\x00" + st.GetDescription(), nil
		}
	}
	return "", nil
}

// UpsertComment keeps one comment of convoy's holding marker on pull
// request pr: it edits the first comment that convoy's own identity (see
// Identity) wrote and whose body holds marker, or creates one. Comments by
// anyone else are never edited, whatever they hold. body gets marker
// prepended when it does not hold it.
func (g *GitHub) UpsertComment(ctx context.Context, pr int, marker, body string) error {
	if marker == "" {
		return fmt.Errorf("comment on %s: empty marker", g.where(pr))
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	me, err := g.Identity(ctx)
	if err != nil {
		return fmt.Errorf("comment on %s: %w", g.where(pr), err)
	}
	existing, err := g.findComment(ctx, pr, marker, me)
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

// findComment pages through pull request pr's comments for the first by
// author (case-insensitive) holding marker.
func (g *GitHub) findComment(ctx context.Context, pr int, marker, author string) (*github.IssueComment, error) {
	var found *github.IssueComment
	err := g.paginate(ctx, "list comments of "+g.where(pr), func(ctx context.Context, opts github.ListOptions) (*github.Response, bool, error) {
		comments, resp, err := g.client.Issues.ListComments(ctx, g.owner, g.repo, pr, &github.IssueListCommentsOptions{ListOptions: opts})
		for _, c := range comments {
			if strings.EqualFold(c.GetUser().GetLogin(), author) && strings.Contains(c.GetBody(), marker) {
				found = c
				return resp, true, err
			}
		}
		return resp, false, err
	})
	return found, err
}

// DeploymentRefused is GitHub's answer to a deployment it did not create:
// 202 (it merged the default branch into the ref instead), 409 (that merge
// conflicts) or 422 (required status checks failed, or the request was
// invalid). Trying again does not help; the rollout goes on without it.
type DeploymentRefused struct {
	Environment string
	Status      int
	Message     string
}

func (e *DeploymentRefused) Error() string {
	return fmt.Sprintf("deployment to %s refused by GitHub: %d %s: %s", e.Environment, e.Status, http.StatusText(e.Status), e.Message)
}

// CreateDeployment records a deployment of ref to environment and returns its
// id; production marks a production environment. It neither merges the
// default branch into ref nor waits for status checks: convoy's own gates
// decided already. An answer other than 201 is a *DeploymentRefused.
func (g *GitHub) CreateDeployment(ctx context.Context, ref, environment string, production bool, payload map[string]any) (int64, error) {
	req := &github.DeploymentRequest{
		Ref:                   github.String(ref),
		Task:                  github.String("deploy"),
		AutoMerge:             github.Bool(false),
		RequiredContexts:      &[]string{},
		Environment:           github.String(environment),
		Description:           github.String("convoy rollout of " + ref),
		ProductionEnvironment: github.Bool(production),
		TransientEnvironment:  github.Bool(false),
	}
	if payload != nil {
		req.Payload = payload
	}
	var id int64
	var refused *DeploymentRefused
	op := fmt.Sprintf("create deployment of %s/%s@%s to %s", g.owner, g.repo, ref, environment)
	err := g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
		d, resp, err := g.client.Repositories.CreateDeployment(ctx, g.owner, g.repo, req)
		var accepted *github.AcceptedError
		var respErr *github.ErrorResponse
		switch {
		case errors.As(err, &accepted):
			refused = &DeploymentRefused{Environment: environment, Status: http.StatusAccepted, Message: acceptedMessage(accepted.Raw)}
			return resp, nil
		case errors.As(err, &respErr) && respErr.Response != nil &&
			(respErr.Response.StatusCode == http.StatusConflict || respErr.Response.StatusCode == http.StatusUnprocessableEntity):
			refused = &DeploymentRefused{Environment: environment, Status: respErr.Response.StatusCode, Message: respErr.Message}
			return resp, nil
		case err == nil:
			id = d.GetID()
		}
		return resp, err
	})
	if err != nil {
		return 0, err
	}
	if refused != nil {
		return 0, refused
	}
	return id, nil
}

// acceptedMessage reads the message of a 202 answer's body.
func acceptedMessage(raw []byte) string {
	var body struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Message != "" {
		return body.Message
	}
	return "accepted without creating a deployment"
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
