package change

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
)

// Defaults of GitHubOptions.
const (
	DefaultGitHubURL        = "https://api.github.com/"
	DefaultMaxRetries       = 3
	DefaultBackoff          = 200 * time.Millisecond
	DefaultMaxBackoff       = 5 * time.Second
	DefaultMaxRateLimitWait = 2 * time.Minute
	// DefaultSecondaryWait is the first wait after a secondary rate limit
	// that names no time: GitHub's docs ask for at least a minute, then
	// exponentially longer.
	DefaultSecondaryWait = time.Minute
)

// GitHubOptions configures a GitHub change source.
type GitHubOptions struct {
	Owner   string // repository owner, "acme"
	Repo    string // repository name, "fleet-config"
	BaseURL string // REST API root; "" means api.github.com. GitHub Enterprise: https://HOST/api/v3/
	Token   string // API token; "" makes unauthenticated requests (see TokenFromEnvOrFile)
	// App authenticates as a GitHub App installation instead of Token.
	App *AppAuth

	HTTPClient *http.Client  // nil: a client with a 30s timeout
	MaxRetries int           // retries after the first try; 0 means DefaultMaxRetries, <0 none
	Backoff    time.Duration // wait after the first failed try, doubled after each; 0 means DefaultBackoff
	MaxBackoff time.Duration // cap of Backoff's doubling; 0 means DefaultMaxBackoff
	// MaxRateLimitWait is the longest wait for a rate limit that says when
	// it resets (Retry-After, X-RateLimit-Reset); a later reset fails the
	// request at once, naming the time. 0 means DefaultMaxRateLimitWait.
	MaxRateLimitWait time.Duration
	// SecondaryWait is the first wait after a secondary rate limit that
	// names no time, doubled after each; 0 means DefaultSecondaryWait.
	SecondaryWait time.Duration
	// Log receives a line for each wait on a rate limit; nil logs nothing.
	Log *slog.Logger
	// Clock times the waits; nil is the wall clock. Tests pass a fake one.
	Clock Clock
}

// Clock is the time the GitHub client waits on.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends.
	Sleep(ctx context.Context, d time.Duration) error
}

type wallClock struct{}

func (wallClock) Now() time.Time                                   { return time.Now() }
func (wallClock) Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, d) }

// GitHub reads change requests from GitHub pull requests and their reviews,
// and reports back to GitHub with commit statuses, pull-request comments and
// deployments. Every request is retried with backoff; every failure is an
// *Unavailable.
type GitHub struct {
	client      *github.Client
	appClient   *github.Client // authenticated as the app itself (JWT), for its identity; nil without App
	owner, repo string
	token       string
	tries       int
	backoff     time.Duration
	maxBackoff  time.Duration
	maxRateWait time.Duration
	secondary   time.Duration
	log         *slog.Logger
	clock       Clock

	mu       sync.Mutex
	identity string            // convoy's login, once known
	statuses map[string]string // sha + context → "state\x00description" last posted or read
}

var _ Source = (*GitHub)(nil)

// NewGitHub returns a GitHub change source for opts.Owner/opts.Repo.
func NewGitHub(opts GitHubOptions) (*GitHub, error) {
	if opts.Owner == "" || opts.Repo == "" {
		return nil, fmt.Errorf("github change source: owner and repo are required, got %q/%q", opts.Owner, opts.Repo)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	base := opts.BaseURL
	if base == "" {
		base = DefaultGitHubURL
	}
	g := &GitHub{
		owner:       opts.Owner,
		repo:        opts.Repo,
		token:       opts.Token,
		tries:       1 + DefaultMaxRetries,
		backoff:     DefaultBackoff,
		maxBackoff:  DefaultMaxBackoff,
		maxRateWait: DefaultMaxRateLimitWait,
		secondary:   DefaultSecondaryWait,
		log:         opts.Log,
		clock:       opts.Clock,
		statuses:    map[string]string{},
	}
	var err error
	switch {
	case opts.App != nil:
		if opts.Token != "" {
			return nil, errors.New("github change source: set a token or a GitHub App, not both")
		}
		if g.client, g.appClient, err = appClients(hc, base, *opts.App); err != nil {
			return nil, err
		}
	default:
		if g.client, err = newClient(hc, base); err != nil {
			return nil, err
		}
		if opts.Token != "" {
			g.client = g.client.WithAuthToken(opts.Token)
		}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.clock == nil {
		g.clock = wallClock{}
	}
	switch {
	case opts.MaxRetries < 0:
		g.tries = 1
	case opts.MaxRetries > 0:
		g.tries = 1 + opts.MaxRetries
	}
	if opts.Backoff > 0 {
		g.backoff = opts.Backoff
	}
	if opts.MaxBackoff > 0 {
		g.maxBackoff = opts.MaxBackoff
	}
	if opts.MaxRateLimitWait > 0 {
		g.maxRateWait = opts.MaxRateLimitWait
	}
	if opts.SecondaryWait > 0 {
		g.secondary = opts.SecondaryWait
	}
	return g, nil
}

// Change returns the change behind revision: the pull request that brought
// it (category from its labels, approvals from its reviews) and the commit.
// Without a pull request the category is Unreviewed. A GitHub failure is an
// *Unavailable; a bad category label an error matching ErrInvalidCategory.
func (g *GitHub) Change(ctx context.Context, revision string) (*Change, error) {
	pr, err := g.pullRequestOf(ctx, revision)
	if err != nil {
		return nil, err
	}
	return g.change(ctx, revision, pr)
}

// PullRequestChange returns the change of pull request number as it stands:
// its head commit, labels and reviews, for a plan before the merge.
func (g *GitHub) PullRequestChange(ctx context.Context, number int) (*Change, error) {
	var pr *github.PullRequest
	err := g.do(ctx, fmt.Sprintf("get pull request %s", g.where(number)), func(ctx context.Context) (*github.Response, error) {
		var resp *github.Response
		var err error
		pr, resp, err = g.client.PullRequests.Get(ctx, g.owner, g.repo, number)
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	head := pr.GetHead().GetSHA()
	if head == "" {
		return nil, &Unavailable{Op: "get pull request " + g.where(number), Reason: "the answer has no head commit", Tries: 1, Err: errors.New("no head sha")}
	}
	return g.change(ctx, head, pr)
}

// change builds the change of revision; pr may be nil.
func (g *GitHub) change(ctx context.Context, revision string, pr *github.PullRequest) (*Change, error) {
	c := &Change{
		Revision:         revision,
		Category:         Unreviewed,
		Approvals:        []Approval{},
		ChangesRequested: []string{},
	}
	if pr != nil {
		p := pullRequest(pr)
		category, err := CategoryFromLabels(g.where(p.Number), p.Labels)
		if err != nil {
			return nil, err
		}
		reviews, err := g.reviews(ctx, p.Number)
		if err != nil {
			return nil, err
		}
		c.PullRequest = p
		c.Category = category
		if err := g.judgeReviews(ctx, c, reviews); err != nil {
			return nil, err
		}
	}
	commit, err := g.commit(ctx, revision)
	if err != nil {
		return nil, err
	}
	c.Commit = commit
	return c, nil
}

// pullRequestOf returns the pull request that brought revision: the merged
// one whose merge commit it is, else a merged one, else the first open one,
// else nil.
func (g *GitHub) pullRequestOf(ctx context.Context, revision string) (*github.PullRequest, error) {
	var all []*github.PullRequest
	op := fmt.Sprintf("list pull requests of %s/%s@%s", g.owner, g.repo, revision)
	err := g.paginate(ctx, op, func(ctx context.Context, opts github.ListOptions) (*github.Response, bool, error) {
		prs, resp, err := g.client.PullRequests.ListPullRequestsWithCommit(ctx, g.owner, g.repo, revision, &opts)
		all = append(all, prs...)
		return resp, false, err
	})
	if err != nil {
		return nil, err
	}
	var merged, open *github.PullRequest
	for _, pr := range all {
		isMerged := pr.GetMerged() || pr.MergedAt != nil
		switch {
		case isMerged && pr.GetMergeCommitSHA() == revision:
			return pr, nil
		case isMerged && merged == nil:
			merged = pr
		case !isMerged && pr.GetState() == "open" && open == nil:
			open = pr
		}
	}
	if merged != nil {
		return merged, nil
	}
	return open, nil
}

// reviews pages through all reviews of pull request number.
func (g *GitHub) reviews(ctx context.Context, number int) ([]Review, error) {
	var out []Review
	err := g.paginate(ctx, "list reviews of "+g.where(number), func(ctx context.Context, opts github.ListOptions) (*github.Response, bool, error) {
		rs, resp, err := g.client.PullRequests.ListReviews(ctx, g.owner, g.repo, number, &opts)
		for _, r := range rs {
			out = append(out, Review{
				ID:          r.GetID(),
				User:        r.GetUser().GetLogin(),
				Type:        r.GetUser().GetType(),
				State:       r.GetState(),
				CommitID:    r.GetCommitID(),
				SubmittedAt: r.GetSubmittedAt().Time,
			})
		}
		return resp, false, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// commit reads revision's author, message and signature verification.
func (g *GitHub) commit(ctx context.Context, revision string) (Commit, error) {
	var rc *github.RepositoryCommit
	err := g.do(ctx, fmt.Sprintf("get commit %s/%s@%s", g.owner, g.repo, revision), func(ctx context.Context) (*github.Response, error) {
		var resp *github.Response
		var err error
		rc, resp, err = g.client.Repositories.GetCommit(ctx, g.owner, g.repo, revision, nil)
		return resp, err
	})
	if err != nil {
		return Commit{}, err
	}
	c := Commit{SHA: rc.GetSHA(), Message: rc.GetCommit().GetMessage()}
	if c.SHA == "" {
		c.SHA = revision
	}
	if a := rc.GetCommit().GetAuthor(); a != nil {
		c.Author = gitIdentity(a.GetName(), a.GetEmail())
	}
	if c.Author == "" {
		c.Author = rc.GetAuthor().GetLogin()
	}
	c.Verified = rc.GetCommit().GetVerification().GetVerified()
	return c, nil
}

// gitIdentity renders an author as git does: "Name <email>".
func gitIdentity(name, email string) string {
	switch {
	case email == "":
		return name
	case name == "":
		return "<" + email + ">"
	}
	return name + " <" + email + ">"
}

// pullRequest converts go-github's pull request to the policy input's.
func pullRequest(pr *github.PullRequest) *PullRequest {
	p := &PullRequest{
		Number:  pr.GetNumber(),
		Title:   pr.GetTitle(),
		Body:    pr.GetBody(),
		Author:  pr.GetUser().GetLogin(),
		Labels:  []string{},
		HeadSHA: pr.GetHead().GetSHA(),
		BaseSHA: pr.GetBase().GetSHA(),
		Merged:  pr.GetMerged() || pr.MergedAt != nil,
		URL:     pr.GetHTMLURL(),
	}
	if head, base := pr.GetHead().GetRepo().GetFullName(), pr.GetBase().GetRepo().GetFullName(); head != "" && base != "" {
		p.Fork = !strings.EqualFold(head, base)
	} else if pr.GetHead() != nil && pr.GetHead().Repo == nil {
		p.Fork = true // the fork was deleted: GitHub answers head.repo null
	}
	for _, l := range pr.Labels {
		if name := l.GetName(); name != "" {
			p.Labels = append(p.Labels, name)
		}
	}
	return p
}

// where names pull request number in messages: "acme/fleet-config#42".
func (g *GitHub) where(number int) string {
	return fmt.Sprintf("%s/%s#%d", g.owner, g.repo, number)
}
