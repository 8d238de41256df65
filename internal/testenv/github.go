package testenv

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// Default repository of a FakeGitHub, and the login of the user its
// tokens belong to.
const (
	FakeGitHubOwner  = "acme"
	FakeGitHubRepo   = "fleet-config"
	FakeGitHubViewer = "convoy-ci"
)

// maxStatuses is how many statuses GitHub keeps per commit and context.
const maxStatuses = 1000

// fakeGitHubRateLimit is the X-RateLimit-Limit a FakeGitHub reports.
const fakeGitHubRateLimit = 5000

// fakeGitHubEpoch is when the first review without a SubmittedAt was
// submitted; later ones follow a second apart, in the order they were added.
var fakeGitHubEpoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// FakeGitHub is an httptest server that answers the part of GitHub's REST API
// convoy uses, with the payloads, pagination (Link headers) and rate-limit
// headers of GitHub's REST reference, for one repository (FakeGitHubOwner/
// FakeGitHubRepo unless SetRepo says otherwise). It serves paths both at the
// root and under /api/v3 (GitHub Enterprise's prefix, which go-github adds to
// a custom base URL). Tests add pull requests, reviews and commits, read what
// was written, and inject failures, rate limits and latency.
type FakeGitHub struct {
	t   testing.TB
	srv *httptest.Server
	mux *http.ServeMux

	mu           sync.Mutex
	owner, repo  string
	token        string
	viewer       string // the login of the token's user
	users        map[string]GitHubUser
	teams        map[string][]string // "org/slug" → member logins
	prs          []*PR
	reviews      map[int][]fakeReview
	commits      map[string]fakeCommit
	statuses     []GitHubStatus
	comments     []GitHubComment
	deployments  []GitHubDeployment
	depStatuses  []GitHubDeploymentStatus
	depAnswers   []int // statuses the next deployment creations answer
	nextID       int64
	requests     []string
	used         int
	failures     []fakeFailure
	secondary    []SecondaryLimit
	limitedUntil time.Time
	latency      time.Duration
	app          *fakeApp
}

// GitHubUser is an account a FakeGitHub knows, with its role on the
// repository. Accounts it does not know are users with read access (anyone
// can read and review a public repository), or apps when the login ends
// in [bot].
type GitHubUser struct {
	Login string
	Type  string // User (default), Bot or Organization
	// Role is the repository role: admin, maintain, write, triage, read or
	// none (default read), or a custom role's name with Base its base role.
	Role string
	Base string
}

// SecondaryLimit is one answer of GitHub's secondary rate limit.
type SecondaryLimit struct {
	Status     int           // 403 (default) or 429
	RetryAfter time.Duration // sent as Retry-After when Headers
	// Headers sends Retry-After and the x-ratelimit-* headers; without
	// them the answer says nothing of when to try again, as GitHub's do
	// at times.
	Headers bool
}

// fakeApp is the GitHub App a FakeGitHub accepts installation tokens of.
type fakeApp struct {
	id, installation int64
	slug             string
	key              *rsa.PublicKey
	ttl              time.Duration
	tokens           map[string]time.Time // token → expiry
	issued           int
}

// PR is a pull request of a FakeGitHub.
type PR struct {
	Number         int
	BaseSHA        string // the base branch's commit; "bbbb…" when empty
	Fork           bool   // the head is in a fork (another repository)
	Title          string
	Body           string
	Author         string   // login
	Labels         []string // label names, "change/major"
	HeadSHA        string
	MergeCommitSHA string
	Merged         bool
	Closed         bool     // closed without merge; a merged pull request is closed anyway
	Commits        []string // SHAs that list this pull request (besides HeadSHA and, once merged, MergeCommitSHA)
}

// Review is a pull-request review of a FakeGitHub.
type Review struct {
	User        string // "" is a deleted account: GitHub answers "user": null
	State       string // APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
	CommitID    string // "" means the pull request's head
	SubmittedAt time.Time
}

type fakeReview struct {
	Review
	id int64
}

// fakeFailure makes the next n requests whose "METHOD /path" matches the
// path.Match pattern match ("" matches all) fail with status.
type fakeFailure struct {
	match  string
	n      int
	status int
}

type fakeCommit struct {
	author, message string
	verified        bool
}

// GitHubStatus is a commit status written to a FakeGitHub.
type GitHubStatus struct {
	SHA, State, Description, Context, TargetURL string
	ID                                          int64  `cmp:"-"`
	Creator                                     string // login of whoever posted it
}

// GitHubComment is a pull-request comment held by a FakeGitHub.
type GitHubComment struct {
	ID      int64
	PR      int
	Author  string // login
	Body    string
	Edits   int // times the comment was edited
	Created time.Time
}

// GitHubDeployment is a deployment created on a FakeGitHub.
type GitHubDeployment struct {
	ID                    int64
	Ref                   string
	Task                  string
	Environment           string
	Description           string
	Payload               map[string]any
	AutoMerge             bool
	RequiredContexts      []string // nil when the request left them out
	ProductionEnvironment bool
}

// GitHubDeploymentStatus is a deployment status written to a FakeGitHub.
type GitHubDeploymentStatus struct {
	DeploymentID int64
	State        string
	Description  string
}

// NewFakeGitHub starts a fake GitHub that stops when the test ends.
func NewFakeGitHub(t testing.TB) *FakeGitHub {
	t.Helper()
	f := &FakeGitHub{
		t:       t,
		owner:   FakeGitHubOwner,
		repo:    FakeGitHubRepo,
		viewer:  FakeGitHubViewer,
		users:   map[string]GitHubUser{},
		teams:   map[string][]string{},
		reviews: map[int][]fakeReview{},
		commits: map[string]fakeCommit{},
		nextID:  1000,
		mux:     http.NewServeMux(),
	}
	f.routes()
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the API root to give go-github (or convoy's --github-api).
func (f *FakeGitHub) URL() string { return f.srv.URL + "/" }

// SetRepo makes the fake serve owner/repo; requests for any other repository get 404.
func (f *FakeGitHub) SetRepo(owner, repo string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owner, f.repo = owner, repo
}

// SetViewer names the user the tokens belong to (GET /user, the author
// of comments made with a token); FakeGitHubViewer by default.
func (f *FakeGitHub) SetViewer(login string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.viewer = login
}

// SetUser adds or replaces an account.
func (f *FakeGitHub) SetUser(u GitHubUser) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[strings.ToLower(u.Login)] = u
}

// AddCollaborators gives each login the repository role (write, admin…).
func (f *FakeGitHub) AddCollaborators(role string, logins ...string) {
	for _, l := range logins {
		f.SetUser(GitHubUser{Login: l, Type: "User", Role: role})
	}
}

// AddTeamMembers adds logins to team "org/slug", creating it.
func (f *FakeGitHub) AddTeamMembers(team string, logins ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.teams[strings.ToLower(team)] = append(f.teams[strings.ToLower(team)], logins...)
}

// EnableApp makes the fake a GitHub App's home: POST
// /app/installations/{installation}/access_tokens and GET /app accept a JWT
// signed with the key whose public half is key and issued by appID, and the
// installation tokens (valid for ttl) authenticate every other request as
// "<slug>[bot]".
func (f *FakeGitHub) EnableApp(appID, installation int64, slug string, key *rsa.PublicKey, ttl time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.app = &fakeApp{id: appID, installation: installation, slug: slug, key: key, ttl: ttl, tokens: map[string]time.Time{}}
}

// InstallationTokens counts the installation tokens issued.
func (f *FakeGitHub) InstallationTokens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.app == nil {
		return 0
	}
	return f.app.issued
}

// AnswerDeployments makes the next deployment creations answer these
// statuses in turn: 201 (created), 202 (GitHub merged the default branch
// into the ref instead), 409 (that merge conflicts), 422 (status checks
// failed).
func (f *FakeGitHub) AnswerDeployments(statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.depAnswers = append(f.depAnswers, statuses...)
}

// RequireToken makes every request need "Authorization: Bearer <token>" or
// "Authorization: token <token>"; others get 401.
func (f *FakeGitHub) RequireToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = token
}

// AddPullRequest adds (or replaces, by number) a pull request.
func (f *FakeGitHub) AddPullRequest(pr PR) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := pr
	p.Labels = slices.Clone(pr.Labels)
	p.Commits = slices.Clone(pr.Commits)
	for i, old := range f.prs {
		if old.Number == pr.Number {
			f.prs[i] = &p
			return
		}
	}
	f.prs = append(f.prs, &p)
}

// AddReview adds a review to pull request pr, after its earlier reviews.
func (f *FakeGitHub) AddReview(pr int, r Review) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	if r.SubmittedAt.IsZero() && r.State != "PENDING" {
		r.SubmittedAt = fakeGitHubEpoch.Add(time.Duration(f.nextID-1000) * time.Second)
	}
	f.reviews[pr] = append(f.reviews[pr], fakeReview{Review: r, id: f.nextID})
}

// AddCommit adds a commit; author is "Name <email>" or a name.
func (f *FakeGitHub) AddCommit(sha, author, message string, verified bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits[sha] = fakeCommit{author: author, message: message, verified: verified}
}

// Statuses returns the commit statuses written, in order.
func (f *FakeGitHub) Statuses() []GitHubStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.statuses)
}

// Comments returns the comments on pull request pr, oldest first.
func (f *FakeGitHub) Comments(pr int) []GitHubComment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []GitHubComment
	for _, c := range f.comments {
		if c.PR == pr {
			out = append(out, c)
		}
	}
	return out
}

// AddComment adds a comment to pull request pr as another user, octocat,
// would, and returns its id.
func (f *FakeGitHub) AddComment(pr int, body string) int64 {
	return f.AddCommentBy(pr, "octocat", body)
}

// AddCommentBy adds a comment by author to pull request pr and returns its id.
func (f *FakeGitHub) AddCommentBy(pr int, author, body string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.comments = append(f.comments, GitHubComment{ID: f.nextID, PR: pr, Author: author, Body: body, Created: time.Now().UTC()})
	return f.nextID
}

// Deployments returns the deployments created, in order.
func (f *FakeGitHub) Deployments() []GitHubDeployment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.deployments)
}

// DeploymentStatuses returns the deployment statuses written, in order.
func (f *FakeGitHub) DeploymentStatuses() []GitHubDeploymentStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.depStatuses)
}

// RequestCount returns how many requests arrived, failed ones included.
func (f *FakeGitHub) RequestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// RequestLog returns "METHOD /path?query" of every request, in order, with
// any /api/v3 prefix removed.
func (f *FakeGitHub) RequestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// FailNext makes the next n requests fail with status (500, 502, 404…) and
// GitHub's error body.
func (f *FakeGitHub) FailNext(n, status int) { f.FailNextMatching("", n, status) }

// FailNextMatching makes the next n requests whose "METHOD /path" matches
// the path.Match pattern (for example "GET /repos/*/*/pulls/*/reviews"; a *
// stops at a slash) fail with status. Patterns are tried in the order given.
func (f *FakeGitHub) FailNextMatching(match string, n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fakeFailure{match: match, n: n, status: status})
}

// RateLimit makes every request until the given time fail as GitHub does
// when the primary rate limit is used up: 403, X-RateLimit-Remaining: 0,
// X-RateLimit-Reset: until (rounded up to the second).
func (f *FakeGitHub) RateLimit(until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limitedUntil = until
}

// SecondaryRateLimit makes the next n requests fail as GitHub's secondary
// rate limit does: 403 with Retry-After (whole seconds).
func (f *FakeGitHub) SecondaryRateLimit(n int, retryAfter time.Duration) {
	for range n {
		f.SecondaryRateLimitWith(SecondaryLimit{Status: http.StatusForbidden, RetryAfter: retryAfter, Headers: true})
	}
}

// SecondaryRateLimitWith makes the next request fail with the secondary
// rate limit answer l (queued after any earlier ones).
func (f *FakeGitHub) SecondaryRateLimitWith(l SecondaryLimit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Status == 0 {
		l.Status = http.StatusForbidden
	}
	f.secondary = append(f.secondary, l)
}

// SetLatency delays every answer by d (or until the client gives up).
func (f *FakeGitHub) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

func (f *FakeGitHub) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok && (p == "" || p[0] == '/') {
		r.URL.Path = p
		r.URL.RawPath = ""
	}

	f.mu.Lock()
	entry := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		entry += "?" + r.URL.RawQuery
	}
	f.requests = append(f.requests, entry)
	latency := f.latency
	f.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}

	f.mu.Lock()
	now := time.Now()
	limited := now.Before(f.limitedUntil)
	reset := now.Add(time.Hour)
	if limited {
		reset = f.limitedUntil
	}
	if !limited {
		f.used++
	}
	remaining := max(fakeGitHubRateLimit-f.used, 1)
	if limited {
		remaining = 0
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")

	failStatus := 0
	for i := range f.failures {
		fl := &f.failures[i]
		if fl.n == 0 {
			continue
		}
		if ok, _ := path.Match(fl.match, r.Method+" "+r.URL.Path); ok || fl.match == "" {
			fl.n--
			failStatus = fl.status
			break
		}
	}
	var secondary *SecondaryLimit
	if failStatus == 0 && len(f.secondary) > 0 {
		secondary = &f.secondary[0]
		f.secondary = f.secondary[1:]
	}
	if secondary == nil || secondary.Headers {
		h.Set("X-RateLimit-Limit", strconv.Itoa(fakeGitHubRateLimit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(reset.UnixNano())/1e9)), 10))
		h.Set("X-RateLimit-Used", strconv.Itoa(fakeGitHubRateLimit-remaining))
		h.Set("X-RateLimit-Resource", "core")
	}
	token := f.token
	app := f.app
	viewer := f.viewer
	f.mu.Unlock()

	switch {
	case failStatus != 0:
		writeGitHubError(w, failStatus, http.StatusText(failStatus))
		return
	case limited:
		writeGitHubError(w, http.StatusForbidden, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits")
		return
	case secondary != nil:
		if secondary.Headers {
			h.Set("Retry-After", strconv.Itoa(int(math.Ceil(secondary.RetryAfter.Seconds()))))
		}
		writeGitHubError(w, secondary.Status, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits")
		return
	}

	// Who is asking: nobody, the token's user, the app (JWT) or its
	// installation (an installation token).
	auth := r.Header.Get("Authorization")
	bearer, _ := strings.CutPrefix(auth, "Bearer ")
	if t, ok := strings.CutPrefix(auth, "token "); ok {
		bearer = t
	}
	caller := ""
	switch {
	case strings.HasPrefix(r.URL.Path, "/app"):
		if app == nil || !f.validJWT(bearer, app) {
			writeGitHubError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
			return
		}
		caller = "app"
	case app != nil && strings.HasPrefix(bearer, "ghs_"):
		f.mu.Lock()
		exp, ok := app.tokens[bearer]
		f.mu.Unlock()
		if !ok || !time.Now().Before(exp) {
			writeGitHubError(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
		caller = app.slug + "[bot]"
	case token != "":
		if auth == "" {
			writeGitHubError(w, http.StatusUnauthorized, "Requires authentication")
			return
		}
		if bearer != token {
			writeGitHubError(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
		caller = viewer
	case auth != "":
		caller = viewer
	}
	// GitHub answers writes and GET /user only to someone it knows.
	if caller == "" && (r.Method != http.MethodGet || r.URL.Path == "/user") {
		writeGitHubError(w, http.StatusUnauthorized, "Requires authentication")
		return
	}
	r.Header.Set(callerHeader, caller)
	f.mux.ServeHTTP(w, r)
}

// callerHeader carries, inside the fake, who a request is from.
const callerHeader = "X-Fake-Caller"

// validJWT checks an app's JWT as GitHub does: RS256 with the app's key,
// issued by the app's ID, not expired, at most ten minutes long.
func (f *FakeGitHub) validJWT(token string, app *fakeApp) bool {
	claims := &jwt.RegisteredClaims{}
	parsed, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodRS256 {
			return nil, fmt.Errorf("alg %v", t.Header["alg"])
		}
		return app.key, nil
	})
	if err != nil || !parsed.Valid || claims.Issuer != strconv.FormatInt(app.id, 10) || claims.ExpiresAt == nil || claims.IssuedAt == nil {
		return false
	}
	return claims.ExpiresAt.Sub(claims.IssuedAt.Time) <= 10*time.Minute
}

func (f *FakeGitHub) routes() {
	repo := func(h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			ok := r.PathValue("owner") == f.owner && r.PathValue("repo") == f.repo
			f.mu.Unlock()
			if !ok {
				writeGitHubError(w, http.StatusNotFound, "Not Found")
				return
			}
			h(w, r)
		}
	}
	const base = "/repos/{owner}/{repo}"
	f.mux.HandleFunc("GET "+base+"/commits/{sha}/pulls", repo(f.listPullsOfCommit))
	f.mux.HandleFunc("GET "+base+"/commits/{sha}", repo(f.getCommit))
	f.mux.HandleFunc("GET "+base+"/pulls/{number}", repo(f.getPull))
	f.mux.HandleFunc("GET "+base+"/pulls/{number}/reviews", repo(f.listReviews))
	f.mux.HandleFunc("POST "+base+"/statuses/{sha}", repo(f.createStatus))
	f.mux.HandleFunc("GET "+base+"/issues/{number}/comments", repo(f.listComments))
	f.mux.HandleFunc("POST "+base+"/issues/{number}/comments", repo(f.createComment))
	f.mux.HandleFunc("PATCH "+base+"/issues/comments/{id}", repo(f.editComment))
	f.mux.HandleFunc("POST "+base+"/deployments", repo(f.createDeployment))
	f.mux.HandleFunc("POST "+base+"/deployments/{id}/statuses", repo(f.createDeploymentStatus))
	f.mux.HandleFunc("GET "+base+"/commits/{sha}/statuses", repo(f.listStatuses))
	f.mux.HandleFunc("GET "+base+"/collaborators/{user}/permission", repo(f.getPermission))
	f.mux.HandleFunc("GET /orgs/{org}/teams/{slug}/members", f.listTeamMembers)
	f.mux.HandleFunc("GET /user", f.getViewer)
	f.mux.HandleFunc("GET /app", f.getApp)
	f.mux.HandleFunc("POST /app/installations/{id}/access_tokens", f.createInstallationToken)
	f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeGitHubError(w, http.StatusNotFound, "Not Found")
	})
}

// --- handlers; each is called without f.mu held ---

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

// --- payload helpers; called with f.mu held ---

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
