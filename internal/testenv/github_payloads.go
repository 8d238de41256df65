package testenv

// FakeGitHub's payloads as GitHub's REST reference shapes them; the
// methods are called with f.mu held.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (f *FakeGitHub) pull(n int) *PR {
	for _, p := range f.prs {
		if p.Number == n {
			return p
		}
	}
	return nil
}

// pullJSON renders a pull request; full adds the fields only GET pulls/{n} has.
func (f *FakeGitHub) pullJSON(p *PR, full bool) map[string]any {
	state := "open"
	var closedAt, mergedAt, mergeSHA any
	if p.Merged || p.Closed {
		state = "closed"
		closedAt = fakeGitHubEpoch.Add(time.Hour).Format(time.RFC3339)
	}
	if p.Merged {
		mergedAt = closedAt
	}
	if p.MergeCommitSHA != "" {
		mergeSHA = p.MergeCommitSHA
	}
	labels := []any{}
	for i, l := range p.Labels {
		labels = append(labels, map[string]any{"id": 100 + i, "node_id": fmt.Sprintf("LA_%d", 100+i), "name": l, "color": "ededed", "default": false, "description": nil})
	}
	repoJSON := map[string]any{"id": 1, "name": f.repo, "full_name": f.owner + "/" + f.repo, "owner": f.userJSON(f.owner)}
	headRepo := repoJSON
	if p.Fork {
		headRepo = map[string]any{"id": 2, "name": f.repo, "full_name": p.Author + "/" + f.repo, "owner": f.userJSON(p.Author), "fork": true}
	}
	baseSHA := p.BaseSHA
	if baseSHA == "" {
		baseSHA = strings.Repeat("b", 40)
	}
	out := map[string]any{
		"url":              f.apiURL("/repos/%s/%s/pulls/%d", f.owner, f.repo, p.Number),
		"id":               p.Number * 10,
		"node_id":          fmt.Sprintf("PR_%d", p.Number),
		"html_url":         fmt.Sprintf("https://github.com/%s/%s/pull/%d", f.owner, f.repo, p.Number),
		"number":           p.Number,
		"state":            state,
		"locked":           false,
		"title":            p.Title,
		"user":             f.userJSON(p.Author),
		"body":             p.Body,
		"labels":           labels,
		"created_at":       fakeGitHubEpoch.Format(time.RFC3339),
		"updated_at":       fakeGitHubEpoch.Add(time.Hour).Format(time.RFC3339),
		"closed_at":        closedAt,
		"merged_at":        mergedAt,
		"merge_commit_sha": mergeSHA,
		"draft":            false,
		"head": map[string]any{"label": fmt.Sprintf("%s:pr-%d", f.owner, p.Number), "ref": fmt.Sprintf("pr-%d", p.Number),
			"sha": p.HeadSHA, "user": f.userJSON(p.Author), "repo": headRepo},
		"base": map[string]any{"label": f.owner + ":main", "ref": "main", "sha": baseSHA,
			"user": f.userJSON(f.owner), "repo": repoJSON},
		"author_association": f.association(p.Author),
	}
	if full {
		out["merged"] = p.Merged
		out["mergeable"] = nil
		out["comments"] = 0
		out["commits"] = len(p.Commits) + 1
	}
	return out
}

func (f *FakeGitHub) commentJSON(c GitHubComment) map[string]any {
	created := c.Created.Format(time.RFC3339)
	return map[string]any{
		"id":                 c.ID,
		"node_id":            fmt.Sprintf("IC_%d", c.ID),
		"url":                f.apiURL("/repos/%s/%s/issues/comments/%d", f.owner, f.repo, c.ID),
		"html_url":           fmt.Sprintf("https://github.com/%s/%s/pull/%d#issuecomment-%d", f.owner, f.repo, c.PR, c.ID),
		"issue_url":          f.apiURL("/repos/%s/%s/issues/%d", f.owner, f.repo, c.PR),
		"body":               c.Body,
		"user":               f.userJSON(c.Author),
		"created_at":         created,
		"updated_at":         created,
		"author_association": f.association(c.Author),
	}
}

func (f *FakeGitHub) userJSON(login string) map[string]any {
	if login == "" {
		return nil
	}
	kind := f.user(login).Type
	var id int
	for _, b := range []byte(login) {
		id = id*31 + int(b)
	}
	return map[string]any{"login": login, "id": id & 0x7fffffff, "node_id": "U_" + login, "type": kind, "site_admin": false,
		"url": f.apiURL("/users/%s", url.PathEscape(login)), "html_url": "https://github.com/" + login}
}

// user is the account login: a known one, else an app (login ending in
// [bot]) or a user with read access. Called with f.mu held.
func (f *FakeGitHub) user(login string) GitHubUser {
	if u, ok := f.users[strings.ToLower(login)]; ok {
		if u.Type == "" {
			u.Type = "User"
		}
		if u.Role == "" {
			u.Role = "read"
		}
		return u
	}
	if strings.HasSuffix(login, "[bot]") {
		return GitHubUser{Login: login, Type: "Bot", Role: "none"}
	}
	if strings.EqualFold(login, f.owner) {
		return GitHubUser{Login: login, Type: "Organization", Role: "admin"}
	}
	return GitHubUser{Login: login, Type: "User", Role: "read"}
}

// association is a login's author_association: MEMBER of a team of the
// owner, COLLABORATOR with write access or more, else NONE.
func (f *FakeGitHub) association(login string) string {
	for team, members := range f.teams {
		if strings.HasPrefix(team, strings.ToLower(f.owner)+"/") && slices.ContainsFunc(members, func(m string) bool { return strings.EqualFold(m, login) }) {
			return "MEMBER"
		}
	}
	switch f.user(login).Role {
	case "admin", "maintain", "write":
		return "COLLABORATOR"
	}
	return "NONE"
}

func (f *FakeGitHub) apiURL(format string, args ...any) string {
	return f.srv.URL + fmt.Sprintf(format, args...)
}

// writePage writes one page of items with per_page (default 30, at most 100)
// and page (from 1), and GitHub's Link header for the other pages.
func (f *FakeGitHub) writePage(w http.ResponseWriter, r *http.Request, items []any) {
	q := r.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max((len(items)+perPage-1)/perPage, 1)
	lo := min((page-1)*perPage, len(items))
	hi := min(lo+perPage, len(items))

	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf("<%s%s?%s>; rel=%q", f.srv.URL, r.URL.Path, q.Encode(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(min(page-1, last), "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	writeJSON(w, http.StatusOK, append([]any{}, items[lo:hi]...))
}

// splitIdentity splits "Name <email>" into name and email.
func splitIdentity(s string) (name, email string) {
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		return strings.TrimSpace(s[:i]), s[i+1 : len(s)-1]
	}
	return s, ""
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeGitHubError(w, http.StatusBadRequest, "Problems parsing JSON")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeGitHubError writes GitHub's error body: {"message", "documentation_url"}.
func writeGitHubError(w http.ResponseWriter, status int, message string, docURL ...string) {
	doc := "https://docs.github.com/rest"
	if len(docURL) > 0 {
		doc = docURL[0]
	}
	writeJSON(w, status, map[string]any{"message": message, "documentation_url": doc, "status": strconv.Itoa(status)})
}
