package testenv

import (
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
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
