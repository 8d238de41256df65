package change

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
)

// repoRoles are the role names GitHub's permission API answers for the
// base roles; a custom role's name is anything else.
var repoRoles = []string{"admin", "maintain", "write", "triage", "read", "none"}

// judgeReviews fills in c's approvals and change requests from reviews:
// each reviewer's role on the repository is looked up once (apps have
// none), and a change request counts only from a writer or an app, as
// GitHub's own merge rules see it.
func (g *GitHub) judgeReviews(ctx context.Context, c *Change, reviews []Review) error {
	approvals, requested := CountReviews(c.PullRequest.Author, reviews)
	roles := map[string]string{}
	for _, a := range slices.Concat(approvals, requested) {
		key := strings.ToLower(a.User)
		if _, done := roles[key]; done || IsBot(a.User, a.Type) {
			continue
		}
		role, err := g.Permission(ctx, a.User)
		if err != nil {
			return err
		}
		roles[key] = role
	}
	for i := range approvals {
		approvals[i].Permission = roles[strings.ToLower(approvals[i].User)]
	}
	c.Approvals = approvals
	c.ChangesRequested = []string{}
	for _, r := range requested {
		if IsBot(r.User, r.Type) || IsWriter(roles[strings.ToLower(r.User)]) {
			c.ChangesRequested = append(c.ChangesRequested, r.User)
		}
	}
	return nil
}

// Permission returns login's role on the repository now: admin, maintain,
// write, triage, read or none, from GitHub's collaborator permission API
// (role_name; for a custom role, the base role it extends). A login GitHub
// does not know is "none".
func (g *GitHub) Permission(ctx context.Context, login string) (string, error) {
	var out struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	path := fmt.Sprintf("repos/%s/%s/collaborators/%s/permission", url.PathEscape(g.owner), url.PathEscape(g.repo), url.PathEscape(login))
	unknown := false
	err := g.do(ctx, fmt.Sprintf("get the permission of %s on %s/%s", login, g.owner, g.repo), func(ctx context.Context) (*github.Response, error) {
		req, err := g.client.NewRequest(http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := g.client.Do(ctx, req, &out)
		if isStatus(err, http.StatusNotFound) {
			unknown = true
			return resp, nil
		}
		return resp, err
	})
	switch {
	case err != nil:
		return "", err
	case unknown:
		return "none", nil
	case slices.Contains(repoRoles, strings.ToLower(out.RoleName)):
		return strings.ToLower(out.RoleName), nil
	case out.Permission != "":
		return strings.ToLower(out.Permission), nil
	}
	return "none", nil
}

// TeamMembers returns the logins of team "org/slug" (members of its child
// teams included, as GitHub lists them). A team GitHub does not show (it
// does not exist, or the token cannot read the organization's teams) is an
// error naming it, not an Unavailable: waiting does not fix it.
func (g *GitHub) TeamMembers(ctx context.Context, team string) ([]string, error) {
	org, slug, ok := strings.Cut(strings.TrimPrefix(team, "@"), "/")
	if !ok || org == "" || slug == "" || strings.Contains(slug, "/") {
		return nil, fmt.Errorf("team %q: expected org/team-slug", team)
	}
	var logins []string
	missing := false
	err := g.paginate(ctx, "list members of team "+org+"/"+slug, func(ctx context.Context, opts github.ListOptions) (*github.Response, bool, error) {
		users, resp, err := g.client.Teams.ListTeamMembersBySlug(ctx, org, slug, &github.TeamListTeamMembersOptions{ListOptions: opts})
		if isStatus(err, http.StatusNotFound) {
			missing = true
			return resp, true, nil
		}
		for _, u := range users {
			if l := u.GetLogin(); l != "" {
				logins = append(logins, l)
			}
		}
		return resp, false, err
	})
	if err != nil {
		return nil, err
	}
	if missing {
		return nil, fmt.Errorf("team %s/%s: not found on GitHub, or the token cannot read it (a token needs read:org; an app, organization members: read)", org, slug)
	}
	return logins, nil
}

// TeamReader lists a team's members: GitHub implements it.
type TeamReader interface {
	TeamMembers(ctx context.Context, team string) ([]string, error)
}

// AddTeams sets the Teams of every approval of ch and of its Commits to
// those of teams ("org/slug") the approver belongs to, reading each team's
// members once. Teams are compared and returned lower-case.
func AddTeams(ctx context.Context, r TeamReader, ch *Change, teams []string) error {
	if ch == nil {
		return nil
	}
	memberOf := map[string][]string{} // login → teams
	seen := map[string]bool{}
	for _, t := range teams {
		t = strings.ToLower(strings.TrimPrefix(t, "@"))
		if seen[t] {
			continue
		}
		seen[t] = true
		members, err := r.TeamMembers(ctx, t)
		if err != nil {
			return err
		}
		for _, m := range members {
			m = strings.ToLower(m)
			memberOf[m] = append(memberOf[m], t)
		}
	}
	var annotate func(c *Change)
	annotate = func(c *Change) {
		for i := range c.Approvals {
			ts := slices.Clone(memberOf[strings.ToLower(c.Approvals[i].User)])
			slices.Sort(ts)
			if ts == nil {
				ts = []string{}
			}
			c.Approvals[i].Teams = ts
		}
		for i := range c.Commits {
			annotate(&c.Commits[i])
		}
	}
	annotate(ch)
	return nil
}

// isStatus reports whether err is GitHub's answer with the HTTP status code.
func isStatus(err error, code int) bool {
	var respErr *github.ErrorResponse
	return errors.As(err, &respErr) && respErr.Response != nil && respErr.Response.StatusCode == code
}
