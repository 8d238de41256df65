package agent

// The GitHub client of the change source, and where reports go.

import (
	"fmt"
	"net/http"
	"time"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
)

// github returns the GitHub client for the fleet's change source, nil when
// changes do not come from GitHub.
func (a *Agent) github(f *fleet.Fleet) (*change.GitHub, error) {
	if f == nil || f.Change.Source != fleet.ChangeSourceGitHub {
		return nil, nil
	}
	return a.githubFor(f.Change.GitHub.Owner, f.Change.GitHub.Repo)
}

// githubFor returns the GitHub client of owner/repo, authenticated as the
// config says (a token, or a GitHub App installation), kept while the
// repository stays the same.
func (a *Agent) githubFor(owner, repo string) (*change.GitHub, error) {
	key := owner + "/" + repo
	a.ghMu.Lock()
	defer a.ghMu.Unlock()
	if a.gh != nil && a.ghRepo == key {
		return a.gh, nil
	}
	opts := change.GitHubOptions{Owner: owner, Repo: repo, Log: a.log,
		MaxRetries: a.ghTuning.MaxRetries, Backoff: a.ghTuning.Backoff, MaxRateLimitWait: a.ghTuning.MaxRateLimitWait}
	var tokenFile string
	if gc := a.cfg.GitHub; gc != nil {
		opts.BaseURL, tokenFile = gc.API, gc.TokenFile
		if opts.MaxRateLimitWait == 0 {
			opts.MaxRateLimitWait = gc.MaxRateLimitWait.Duration
		}
		if app := gc.App; app != nil {
			auth, err := change.AppAuthFromFile(app.ID, app.InstallationID, app.PrivateKeyFile)
			if err != nil {
				return nil, fmt.Errorf("github.app: %w", err)
			}
			opts.App = auth
		}
	}
	if opts.App == nil {
		token, err := change.TokenFromEnvOrFile(tokenFile)
		if err != nil {
			return nil, err
		}
		opts.Token = token
	}
	timeout := a.ghTuning.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	opts.HTTPClient = &http.Client{Timeout: timeout, Transport: a.metrics.GitHubTransport(nil)}
	gh, err := change.NewGitHub(opts)
	if err != nil {
		return nil, err
	}
	a.gh, a.ghRepo = gh, key
	return gh, nil
}

// setReports remembers the fleet whose change source the reports (commit
// statuses, deployments) go to: the rules', never the judged revision's.
func (a *Agent) setReports(f *fleet.Fleet) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.reports = f
}

// reportsFleet is the fleet whose change source gets the reports: the
// rules' of the last plan, or f before any.
func (a *Agent) reportsFleet(f *fleet.Fleet) *fleet.Fleet {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.reports != nil {
		return a.st.reports
	}
	return f
}
