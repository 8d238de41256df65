package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
)

// changeFlags select where a command's change comes from.
type changeFlags struct {
	file       string // --change FILE
	githubRepo string // --github-repo OWNER/REPO
	githubAPI  string // --github-api URL
	pr         int    // --pr N
}

func (cf *changeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&cf.file, "change", "", "change document (JSON, DESIGN.md §4 change); overrides the fleet's change source")
	f.StringVar(&cf.githubRepo, "github-repo", "", "read the change from this GitHub repository's pull requests (OWNER/REPO); GITHUB_TOKEN is read from the environment")
	f.StringVar(&cf.githubAPI, "github-api", "", "GitHub REST API URL (GitHub Enterprise: https://HOST/api/v3/)")
	f.IntVar(&cf.pr, "pr", 0, "plan pull request N before it merges (with --github-repo)")
}

// githubClient returns the GitHub client the flags or the fleet name, or nil
// when the change does not come from GitHub.
func (cf *changeFlags) githubClient(f *fleet.Fleet) (*change.GitHub, error) {
	owner, repo := "", ""
	switch {
	case cf.githubRepo != "":
		var ok bool
		owner, repo, ok = strings.Cut(cf.githubRepo, "/")
		if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
			return nil, fmt.Errorf("--github-repo %q: expected OWNER/REPO", cf.githubRepo)
		}
	case cf.file == "" && f.Change.Source == "github":
		owner, repo = f.Change.GitHub.Owner, f.Change.GitHub.Repo
	default:
		if cf.pr != 0 {
			return nil, errors.New("--pr: needs --github-repo (or spec.change.source: github in fleet.yaml)")
		}
		return nil, nil
	}
	token, err := change.TokenFromEnvOrFile(os.Getenv("GITHUB_TOKEN_FILE"))
	if err != nil {
		return nil, err
	}
	return change.NewGitHub(change.GitHubOptions{Owner: owner, Repo: repo, BaseURL: cf.githubAPI, Token: token})
}

// loadChange returns the change behind the checkout's revision: from
// --change FILE, from GitHub, or from the commit's trailers, as the flags
// and the fleet's change source say. The second result is why the change
// could not be read (GitHub unreachable, an invalid category): the plan
// holds or denies on it rather than invent approvals. The first error is a
// usage error.
func loadChange(ctx context.Context, co *checkout, cf changeFlags, gh *change.GitHub) (*change.Change, error, error) {
	switch {
	case cf.file != "":
		ch, err := readChangeFile(cf.file, co.Revision)
		return ch, nil, err
	case gh != nil && cf.pr != 0:
		ch, err := gh.PullRequestChange(ctx, cf.pr)
		return ch, err, nil
	case gh != nil:
		if co.Revision == "" {
			return nil, nil, errors.New("--github-repo: the repository has no revision to look up (not a git repository); pass --pr N or --change FILE")
		}
		ch, err := gh.Change(ctx, co.Revision)
		return ch, err, nil
	}
	if co.Revision == "" {
		return nil, nil, errors.New("--change: required when --repo is not a git repository")
	}
	ch, err := change.NewTrailers(co.readCommit).Change(ctx, co.Revision)
	return ch, err, nil
}

// readCommit returns the message and author of revision in the checkout's
// repository, for the trailers change source.
func (co *checkout) readCommit(_ context.Context, revision string) (string, string, error) {
	if co.Commit != nil && co.Revision == revision {
		return co.Commit.Message, fmt.Sprintf("%s <%s>", co.Commit.Author, co.Commit.Email), nil
	}
	r, err := git.PlainOpen(co.Dir)
	if err != nil {
		return "", "", err
	}
	c, err := r.CommitObject(plumbing.NewHash(revision))
	if err != nil {
		return "", "", err
	}
	return c.Message, fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email), nil
}

func readChangeFile(file, revision string) (*change.Change, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--change: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ch change.Change
	if err := dec.Decode(&ch); err != nil {
		return nil, fmt.Errorf("--change %s: %w", file, err)
	}
	if ch.Category == "" {
		return nil, fmt.Errorf("--change %s: category: required", file)
	}
	if ch.Revision == "" {
		ch.Revision = revision
	}
	if ch.Commit.SHA == "" {
		ch.Commit.SHA = revision
	}
	return &ch, nil
}
