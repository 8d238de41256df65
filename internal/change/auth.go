package change

// How convoy authenticates to GitHub (a token, or a GitHub App
// installation) and which identity it writes as.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

// AppAuth authenticates as a GitHub App installation: installation tokens
// are made from the app's private key and refreshed before they expire.
type AppAuth struct {
	AppID          int64
	InstallationID int64
	PrivateKey     []byte // PEM; never logged
}

// newClient is a go-github client of the REST API at base.
func newClient(hc *http.Client, base string) (*github.Client, error) {
	client := github.NewClient(hc)
	if base == DefaultGitHubURL {
		return client, nil
	}
	client, err := client.WithEnterpriseURLs(base, base)
	if err != nil {
		return nil, fmt.Errorf("github change source: base URL %q: %w", base, err)
	}
	return client, nil
}

// appClients returns a client authenticated as the app's installation
// (ghinstallation refreshes its token a minute before it expires) and one
// authenticated as the app itself.
func appClients(hc *http.Client, base string, app AppAuth) (installation, self *github.Client, err error) {
	if app.AppID <= 0 || app.InstallationID <= 0 {
		return nil, nil, fmt.Errorf("github app: appID and installationID are required, got %d and %d", app.AppID, app.InstallationID)
	}
	tr := hc.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	// ghinstallation wants the API's root without the trailing slash; for
	// GitHub Enterprise that root ends in /api/v3, which go-github adds too.
	root := strings.TrimRight(base, "/")
	if base != DefaultGitHubURL && !strings.HasSuffix(root, "/api/v3") {
		root += "/api/v3"
	}
	itr, err := ghinstallation.New(tr, app.AppID, app.InstallationID, app.PrivateKey)
	if err != nil {
		// The parser's message never quotes the key.
		return nil, nil, fmt.Errorf("github app %d: private key: %w", app.AppID, err)
	}
	itr.BaseURL = root
	atr, err := ghinstallation.NewAppsTransport(tr, app.AppID, app.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("github app %d: private key: %w", app.AppID, err)
	}
	atr.BaseURL = root
	if installation, err = newClient(&http.Client{Transport: itr, Timeout: hc.Timeout}, base); err != nil {
		return nil, nil, err
	}
	if self, err = newClient(&http.Client{Transport: atr, Timeout: hc.Timeout}, base); err != nil {
		return nil, nil, err
	}
	return installation, self, nil
}

// AppAuthFromFile returns the App authentication of appID and
// installationID with the private key read from keyFile.
func AppAuthFromFile(appID, installationID int64, keyFile string) (*AppAuth, error) {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("github app private key: %w", err)
	}
	if len(strings.TrimSpace(string(key))) == 0 {
		return nil, fmt.Errorf("github app private key %s: empty", keyFile)
	}
	return &AppAuth{AppID: appID, InstallationID: installationID, PrivateKey: key}, nil
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

// Identity returns convoy's own login: the token's user (GET /user), or the
// app's bot, "<slug>[bot]" (GET /app). It decides which comments are
// convoy's. It is read once and remembered.
func (g *GitHub) Identity(ctx context.Context) (string, error) {
	g.mu.Lock()
	id := g.identity
	g.mu.Unlock()
	if id != "" {
		return id, nil
	}
	switch {
	case g.appClient != nil:
		var app *github.App
		err := g.do(ctx, "get the GitHub App", func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			app, resp, err = g.appClient.Apps.Get(ctx, "")
			return resp, err
		})
		if err != nil {
			return "", err
		}
		if app.GetSlug() == "" {
			return "", &Unavailable{Op: "get the GitHub App", Reason: "the answer has no slug", Tries: 1, Err: errors.New("no slug")}
		}
		id = app.GetSlug() + "[bot]"
	case g.token != "":
		var user *github.User
		err := g.do(ctx, "get the authenticated user", func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			user, resp, err = g.client.Users.Get(ctx, "")
			return resp, err
		})
		if err != nil {
			return "", err
		}
		if id = user.GetLogin(); id == "" {
			return "", &Unavailable{Op: "get the authenticated user", Reason: "the answer has no login", Tries: 1, Err: errors.New("no login")}
		}
	default:
		return "", errors.New("github: no identity without a token or a GitHub App: convoy cannot tell its own comments from others'")
	}
	g.mu.Lock()
	g.identity = id
	g.mu.Unlock()
	return id, nil
}
