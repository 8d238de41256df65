package testenv

// The REST handlers of FakeGitHub; each is called without f.mu held.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (f *FakeGitHub) listPullsOfCommit(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	f.mu.Lock()
	var items []any
	for _, p := range f.prs {
		if p.HeadSHA == sha || slices.Contains(p.Commits, sha) || (p.Merged && p.MergeCommitSHA == sha) {
			items = append(items, f.pullJSON(p, false))
		}
	}
	f.mu.Unlock()
	f.writePage(w, r, items)
}

func (f *FakeGitHub) getPull(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("number"))
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pull(n)
	if p == nil {
		writeGitHubError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, f.pullJSON(p, true))
}

func (f *FakeGitHub) listReviews(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("number"))
	f.mu.Lock()
	p := f.pull(n)
	if p == nil {
		f.mu.Unlock()
		writeGitHubError(w, http.StatusNotFound, "Not Found")
		return
	}
	var items []any
	for _, rv := range f.reviews[n] {
		commitID := rv.CommitID
		if commitID == "" {
			commitID = p.HeadSHA
		}
		var user any
		if rv.User != "" {
			user = f.userJSON(rv.User)
		}
		item := map[string]any{
			"id":                 rv.id,
			"node_id":            fmt.Sprintf("PRR_%d", rv.id),
			"user":               user,
			"body":               "",
			"state":              rv.State,
			"html_url":           fmt.Sprintf("https://github.com/%s/%s/pull/%d#pullrequestreview-%d", f.owner, f.repo, n, rv.id),
			"pull_request_url":   f.apiURL("/repos/%s/%s/pulls/%d", f.owner, f.repo, n),
			"commit_id":          commitID,
			"author_association": f.association(rv.User),
		}
		if rv.State != "PENDING" {
			item["submitted_at"] = rv.SubmittedAt.UTC().Format(time.RFC3339)
		}
		items = append(items, item)
	}
	f.mu.Unlock()
	f.writePage(w, r, items)
}

func (f *FakeGitHub) getCommit(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.commits[sha]
	if !ok {
		writeGitHubError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+sha)
		return
	}
	name, email := splitIdentity(c.author)
	person := map[string]any{"name": name, "email": email, "date": fakeGitHubEpoch.Format(time.RFC3339)}
	reason := "unsigned"
	if c.verified {
		reason = "valid"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sha":      sha,
		"node_id":  "C_" + sha,
		"url":      f.apiURL("/repos/%s/%s/commits/%s", f.owner, f.repo, sha),
		"html_url": fmt.Sprintf("https://github.com/%s/%s/commit/%s", f.owner, f.repo, sha),
		"commit": map[string]any{
			"url":           f.apiURL("/repos/%s/%s/git/commits/%s", f.owner, f.repo, sha),
			"author":        person,
			"committer":     person,
			"message":       c.message,
			"comment_count": 0,
			"tree":          map[string]any{"sha": strings.Repeat("0", 40)},
			"verification":  map[string]any{"verified": c.verified, "reason": reason, "signature": nil, "payload": nil},
		},
		"author":    nil,
		"committer": nil,
		"parents":   []any{},
		"files":     []any{},
	})
}

func (f *FakeGitHub) createStatus(w http.ResponseWriter, r *http.Request) {
	var in struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	switch in.State {
	case "error", "failure", "pending", "success":
	default:
		writeGitHubError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	if in.Context == "" {
		in.Context = "default"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sha := r.PathValue("sha")
	n := 0
	for _, st := range f.statuses {
		if st.SHA == sha && st.Context == in.Context {
			n++
		}
	}
	if n >= maxStatuses {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"message": "Validation Failed",
			"errors": []any{map[string]any{"resource": "Status", "code": "custom", "field": "sha",
				"message": "This SHA and context has reached the maximum number of statuses."}},
			"documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status", "status": "422",
		})
		return
	}
	f.nextID++
	f.statuses = append(f.statuses, GitHubStatus{SHA: sha, State: in.State, Description: in.Description, Context: in.Context, TargetURL: in.TargetURL, ID: f.nextID, Creator: r.Header.Get(callerHeader)})
	writeJSON(w, http.StatusCreated, f.statusJSON(f.statuses[len(f.statuses)-1]))
}

func (f *FakeGitHub) statusJSON(st GitHubStatus) map[string]any {
	now := time.Now().UTC().Format(time.RFC3339)
	return map[string]any{
		"url": f.apiURL("/repos/%s/%s/statuses/%s", f.owner, f.repo, st.SHA),
		"id":  st.ID, "node_id": fmt.Sprintf("SC_%d", st.ID),
		"state": st.State, "description": st.Description, "target_url": st.TargetURL, "context": st.Context,
		"created_at": now, "updated_at": now, "creator": f.userJSON(st.Creator),
	}
}

// listStatuses lists a commit's statuses, newest first, as GitHub does.
func (f *FakeGitHub) listStatuses(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	f.mu.Lock()
	var items []any
	for i := len(f.statuses) - 1; i >= 0; i-- {
		if f.statuses[i].SHA == sha {
			items = append(items, f.statusJSON(f.statuses[i]))
		}
	}
	f.mu.Unlock()
	f.writePage(w, r, items)
}

func (f *FakeGitHub) listComments(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("number"))
	f.mu.Lock()
	if f.pull(n) == nil {
		f.mu.Unlock()
		writeGitHubError(w, http.StatusNotFound, "Not Found")
		return
	}
	var items []any
	for _, c := range f.comments {
		if c.PR == n {
			items = append(items, f.commentJSON(c))
		}
	}
	f.mu.Unlock()
	f.writePage(w, r, items)
}

func (f *FakeGitHub) createComment(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("number"))
	var in struct {
		Body string `json:"body"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pull(n) == nil {
		writeGitHubError(w, http.StatusNotFound, "Not Found")
		return
	}
	if in.Body == "" {
		writeGitHubError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	f.nextID++
	c := GitHubComment{ID: f.nextID, PR: n, Author: r.Header.Get(callerHeader), Body: in.Body, Created: time.Now().UTC()}
	f.comments = append(f.comments, c)
	writeJSON(w, http.StatusCreated, f.commentJSON(c))
}

func (f *FakeGitHub) editComment(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var in struct {
		Body string `json:"body"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.comments {
		if f.comments[i].ID == id {
			if in.Body == "" {
				writeGitHubError(w, http.StatusUnprocessableEntity, "Validation Failed")
				return
			}
			f.comments[i].Body = in.Body
			f.comments[i].Edits++
			writeJSON(w, http.StatusOK, f.commentJSON(f.comments[i]))
			return
		}
	}
	writeGitHubError(w, http.StatusNotFound, "Not Found")
}

func (f *FakeGitHub) createDeployment(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Ref              string          `json:"ref"`
		Task             string          `json:"task"`
		AutoMerge        *bool           `json:"auto_merge"`
		RequiredContexts *[]string       `json:"required_contexts"`
		Payload          json.RawMessage `json:"payload"`
		Environment      string          `json:"environment"`
		Description      string          `json:"description"`
		Production       *bool           `json:"production_environment"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	f.mu.Lock()
	answer := http.StatusCreated
	if len(f.depAnswers) > 0 {
		answer, f.depAnswers = f.depAnswers[0], f.depAnswers[1:]
	}
	f.mu.Unlock()
	switch answer {
	case http.StatusAccepted:
		writeJSON(w, http.StatusAccepted, map[string]any{"message": "Auto-merged main into topic-branch on deployment."})
		return
	case http.StatusConflict:
		writeGitHubError(w, http.StatusConflict, "Conflict merging main into topic-branch.")
		return
	case http.StatusUnprocessableEntity:
		writeGitHubError(w, http.StatusUnprocessableEntity, "Conflict: Commit status checks failed for topic-branch.")
		return
	}
	if in.Ref == "" {
		writeGitHubError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	d := GitHubDeployment{Ref: in.Ref, Task: in.Task, Environment: in.Environment, Description: in.Description, AutoMerge: true}
	// GitHub's default: production_environment is true for "production".
	d.ProductionEnvironment = in.Environment == "" || in.Environment == "production"
	if in.Production != nil {
		d.ProductionEnvironment = *in.Production
	}
	if d.Task == "" {
		d.Task = "deploy"
	}
	if d.Environment == "" {
		d.Environment = "production"
	}
	if in.AutoMerge != nil {
		d.AutoMerge = *in.AutoMerge
	}
	if in.RequiredContexts != nil {
		d.RequiredContexts = append([]string{}, *in.RequiredContexts...)
	}
	if len(in.Payload) > 0 && string(in.Payload) != "null" {
		if err := json.Unmarshal(in.Payload, &d.Payload); err != nil {
			writeGitHubError(w, http.StatusUnprocessableEntity, "Validation Failed: payload must be an object")
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	d.ID = f.nextID
	f.deployments = append(f.deployments, d)
	now := time.Now().UTC().Format(time.RFC3339)
	payload := any(d.Payload)
	if d.Payload == nil {
		payload = map[string]any{}
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"url": f.apiURL("/repos/%s/%s/deployments/%d", f.owner, f.repo, d.ID),
		"id":  d.ID, "node_id": fmt.Sprintf("DE_%d", d.ID),
		"sha": in.Ref, "ref": in.Ref, "task": d.Task, "payload": payload,
		"original_environment": d.Environment, "environment": d.Environment, "description": d.Description,
		"production_environment": d.ProductionEnvironment, "transient_environment": false,
		"creator": f.userJSON(r.Header.Get(callerHeader)), "created_at": now, "updated_at": now,
		"statuses_url":   f.apiURL("/repos/%s/%s/deployments/%d/statuses", f.owner, f.repo, d.ID),
		"repository_url": f.apiURL("/repos/%s/%s", f.owner, f.repo),
	})
}

func (f *FakeGitHub) createDeploymentStatus(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var in struct {
		State       string `json:"state"`
		Description string `json:"description"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	switch in.State {
	case "error", "failure", "inactive", "in_progress", "queued", "pending", "success":
	default:
		writeGitHubError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var env string
	found := false
	for _, d := range f.deployments {
		if d.ID == id {
			found, env = true, d.Environment
		}
	}
	if !found {
		writeGitHubError(w, http.StatusNotFound, "Not Found")
		return
	}
	f.nextID++
	f.depStatuses = append(f.depStatuses, GitHubDeploymentStatus{DeploymentID: id, State: in.State, Description: in.Description})
	now := time.Now().UTC().Format(time.RFC3339)
	writeJSON(w, http.StatusCreated, map[string]any{
		"url": f.apiURL("/repos/%s/%s/deployments/%d/statuses/%d", f.owner, f.repo, id, f.nextID),
		"id":  f.nextID, "node_id": fmt.Sprintf("DES_%d", f.nextID),
		"state": in.State, "description": in.Description, "environment": env,
		"creator": f.userJSON(r.Header.Get(callerHeader)), "created_at": now, "updated_at": now,
		"deployment_url": f.apiURL("/repos/%s/%s/deployments/%d", f.owner, f.repo, id),
		"repository_url": f.apiURL("/repos/%s/%s", f.owner, f.repo),
	})
}

// getPermission answers GitHub's collaborator permission API: role_name is
// the role (a custom one's name), permission the legacy base role (maintain
// reads write, triage reads read). Apps are no collaborators: 404.
func (f *FakeGitHub) getPermission(w http.ResponseWriter, r *http.Request) {
	login := r.PathValue("user")
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.user(login)
	if u.Type == "Bot" {
		writeGitHubError(w, http.StatusNotFound, "Not Found")
		return
	}
	base := u.Role
	if u.Base != "" {
		base = u.Base
	}
	legacy := map[string]string{"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}[base]
	if legacy == "" {
		legacy = "none"
	}
	writeJSON(w, http.StatusOK, map[string]any{"permission": legacy, "role_name": u.Role, "user": f.userJSON(login)})
}

func (f *FakeGitHub) listTeamMembers(w http.ResponseWriter, r *http.Request) {
	team := strings.ToLower(r.PathValue("org") + "/" + r.PathValue("slug"))
	f.mu.Lock()
	members, ok := f.teams[team]
	var items []any
	for _, m := range members {
		items = append(items, f.userJSON(m))
	}
	f.mu.Unlock()
	if !ok {
		writeGitHubError(w, http.StatusNotFound, "Not Found")
		return
	}
	f.writePage(w, r, items)
}

func (f *FakeGitHub) getViewer(w http.ResponseWriter, r *http.Request) {
	caller := r.Header.Get(callerHeader)
	if strings.HasSuffix(caller, "[bot]") {
		// An installation token has no user.
		writeGitHubError(w, http.StatusForbidden, "Resource not accessible by integration")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, http.StatusOK, f.userJSON(caller))
}

func (f *FakeGitHub) getApp(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"id": f.app.id, "slug": f.app.slug, "node_id": fmt.Sprintf("A_%d", f.app.id),
		"name": f.app.slug, "owner": f.userJSON(f.owner)})
}

func (f *FakeGitHub) createInstallationToken(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != f.app.installation {
		writeGitHubError(w, http.StatusNotFound, "Not Found")
		return
	}
	f.app.issued++
	token := fmt.Sprintf("ghs_fake%06d", f.app.issued)
	exp := time.Now().Add(f.app.ttl)
	f.app.tokens[token] = exp
	writeJSON(w, http.StatusCreated, map[string]any{"token": token, "expires_at": exp.UTC().Format(time.RFC3339),
		"permissions":          map[string]any{"pull_requests": "write", "statuses": "write", "deployments": "write", "members": "read"},
		"repository_selection": "selected"})
}
