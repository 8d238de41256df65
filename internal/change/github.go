package change

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// Defaults of GitHubOptions.
const (
	DefaultGitHubURL        = "https://api.github.com/"
	DefaultMaxRetries       = 3
	DefaultBackoff          = 200 * time.Millisecond
	DefaultMaxBackoff       = 5 * time.Second
	DefaultMaxRateLimitWait = 30 * time.Second
)

// GitHubOptions configures a GitHub change source.
type GitHubOptions struct {
	Owner   string // repository owner, "acme"
	Repo    string // repository name, "fleet-config"
	BaseURL string // REST API root; "" means api.github.com. GitHub Enterprise: https://HOST/api/v3/
	Token   string // API token; "" makes unauthenticated requests (see TokenFromEnvOrFile)

	HTTPClient       *http.Client  // nil: a client with a 30s timeout
	MaxRetries       int           // retries after the first try; 0 means DefaultMaxRetries, <0 none
	Backoff          time.Duration // wait after the first failed try, doubled after each; 0 means DefaultBackoff
	MaxBackoff       time.Duration // cap of Backoff's doubling; 0 means DefaultMaxBackoff
	MaxRateLimitWait time.Duration // longest wait for a rate limit to reset; 0 means DefaultMaxRateLimitWait
}

// GitHub reads change requests from GitHub pull requests and their reviews,
// and reports back to GitHub with commit statuses, pull-request comments and
// deployments. Every request is retried with backoff; every failure is an
// *Unavailable.
type GitHub struct {
	client      *github.Client
	owner, repo string
	token       string
	tries       int
	backoff     time.Duration
	maxBackoff  time.Duration
	maxRateWait time.Duration
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
	client := github.NewClient(hc)
	if opts.BaseURL != "" && opts.BaseURL != DefaultGitHubURL {
		var err error
		client, err = client.WithEnterpriseURLs(opts.BaseURL, opts.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("github change source: base URL %q: %w", opts.BaseURL, err)
		}
	}
	if opts.Token != "" {
		client = client.WithAuthToken(opts.Token)
	}
	g := &GitHub{
		client:      client,
		owner:       opts.Owner,
		repo:        opts.Repo,
		token:       opts.Token,
		tries:       1 + DefaultMaxRetries,
		backoff:     DefaultBackoff,
		maxBackoff:  DefaultMaxBackoff,
		maxRateWait: DefaultMaxRateLimitWait,
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
	return g, nil
}

// TokenFromEnvOrFile returns the GitHub token: the trimmed content of file
// when file is not empty, else $GITHUB_TOKEN, else "" (unauthenticated).
func TokenFromEnvOrFile(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("github token file %s: %w", file, err)
		}
		token := strings.TrimSpace(string(b))
		if token == "" {
			return "", fmt.Errorf("github token file %s: empty", file)
		}
		return token, nil
	}
	return strings.TrimSpace(os.Getenv("GITHUB_TOKEN")), nil
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
		c.Approvals, c.ChangesRequested = CountReviews(p.Author, reviews)
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
	opts := &github.ListOptions{PerPage: 100}
	op := fmt.Sprintf("list pull requests of %s/%s@%s", g.owner, g.repo, revision)
	for page := 0; page < maxPages; page++ {
		var prs []*github.PullRequest
		var next int
		err := g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			prs, resp, err = g.client.PullRequests.ListPullRequestsWithCommit(ctx, g.owner, g.repo, revision, opts)
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, prs...)
		if next == 0 || next == opts.Page {
			break
		}
		opts.Page = next
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

// maxPages bounds every pagination, against a server that never ends one.
const maxPages = 1000

// reviews pages through all reviews of pull request number.
func (g *GitHub) reviews(ctx context.Context, number int) ([]Review, error) {
	var out []Review
	opts := &github.ListOptions{PerPage: 100}
	op := "list reviews of " + g.where(number)
	for page := 0; page < maxPages; page++ {
		var rs []*github.PullRequestReview
		var next int
		err := g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			rs, resp, err = g.client.PullRequests.ListReviews(ctx, g.owner, g.repo, number, opts)
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			out = append(out, Review{
				ID:          r.GetID(),
				User:        r.GetUser().GetLogin(),
				State:       r.GetState(),
				CommitID:    r.GetCommitID(),
				SubmittedAt: r.GetSubmittedAt().Time,
			})
		}
		if next == 0 || next == opts.Page {
			break
		}
		opts.Page = next
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
		Merged:  pr.GetMerged() || pr.MergedAt != nil,
		URL:     pr.GetHTMLURL(),
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
