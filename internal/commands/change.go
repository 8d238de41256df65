package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/source"
	"github.com/convoy-gitops/convoy/internal/trust"
)

// changeFlags select where a command's change comes from, and the trusted
// base whose rules judge it.
type changeFlags struct {
	file       string // --change FILE
	githubRepo string // --github-repo OWNER/REPO
	githubAPI  string // --github-api URL
	pr         int    // --pr N
	base       string // --base REV
	insecure   bool   // --allow-insecure
}

func (cf *changeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&cf.file, "change", "", "change document (JSON, the policy input's change); overrides the fleet's change source")
	f.StringVar(&cf.githubRepo, "github-repo", "", "read the change from this GitHub repository's pull requests (OWNER/REPO); GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY_FILE, from the environment")
	f.StringVar(&cf.githubAPI, "github-api", "", "GitHub REST API URL (GitHub Enterprise: https://HOST/api/v3/)")
	f.IntVar(&cf.pr, "pr", 0, "plan pull request N before it merges (with --github-repo)")
	f.BoolVar(&cf.insecure, "allow-insecure", false, "accept http:// and git:// repository URLs and an http:// GitHub API, which send credentials in clear (tests and local servers only)")
	f.StringVar(&cf.base, "base", "", "trusted base whose rules (policies, policy data, windows, change source, environments, capacities, CODEOWNERS) judge the change; default: the revision's first parent, or the pull request's base")
}

// gate is what judges a checkout's change: each cluster's basis (the same
// for every cluster on the command line) and the GitHub client, when
// changes come from GitHub.
type gate struct {
	basis *trust.Basis
	gh    *change.GitHub
}

// judge works out the trusted base, its rules and the change the checkout's
// revision carries since that base. The change source is the base's (or
// the flags'): a change cannot switch it for itself.
func judge(ctx context.Context, co *checkout, cf changeFlags) (*gate, error) {
	targetRules, err := trust.Load(trust.OriginBase, co.Revision, co.Dir)
	if err != nil {
		return nil, err
	}
	g := &gate{}
	fixed, err := readChangeFile(cf.file, co.Revision)
	if err != nil {
		return nil, err
	}
	if co.Worktree && (fixed != nil || cf.pr != 0) {
		return nil, errors.New("--worktree: uncommitted work has no change: no approval applies to it (drop --change and --pr)")
	}

	// The base, and the rules it holds.
	judge := &trust.Judge{History: co.History, SnapshotDir: co.cacheDir}
	base := ""
	switch {
	case co.Plain:
		if cf.base != "" {
			return nil, fmt.Errorf("--base %s: %s is not a git repository", cf.base, co.Dir)
		}
	case cf.base != "":
		if base, err = co.History.Resolve(cf.base); err != nil {
			return nil, fmt.Errorf("--base: %w", err)
		}
	case co.Worktree:
		base = co.Head
	case cf.pr == 0:
		if base, err = co.History.FirstParent(co.Revision); err != nil {
			return nil, err
		}
	}
	rules := targetRules
	if base != "" {
		if rules, err = judge.RulesAt(ctx, base); err != nil {
			return nil, err
		}
	}

	// The change source: the flags', else the base's.
	src := rules.Fleet.Change
	if cf.githubRepo != "" || (fixed == nil && src.Source == fleet.ChangeSourceGitHub) {
		if g.gh, err = cf.githubClient(src); err != nil {
			return nil, err
		}
	} else if cf.pr != 0 {
		return nil, errors.New("--pr: needs --github-repo (or spec.change.source: github in the base's fleet.yaml)")
	}
	var prErr error
	if cf.pr != 0 {
		fixed, prErr = g.gh.PullRequestChange(ctx, cf.pr)
		if prErr == nil && cf.base == "" && !co.Plain && !co.Worktree {
			if base, err = co.History.Resolve(fixed.PullRequest.BaseSHA); err != nil {
				return nil, fmt.Errorf("--pr %d: its base %s is not in the repository: fetch it, or pass --base", cf.pr, source.Short(fixed.PullRequest.BaseSHA))
			}
			if rules, err = judge.RulesAt(ctx, base); err != nil {
				return nil, err
			}
		}
	}

	switch {
	case co.Plain, co.Worktree:
		// Nothing to read commits from: the change is the file's or the
		// pull request's, or none (unreviewed).
		b := &trust.Basis{Base: base, Rules: rules, Change: fixed, ChangeErr: prErr}
		if base == "" {
			boot := *rules
			boot.Origin = trust.OriginBootstrap
			b.Rules = &boot
		} else {
			b.Change = &change.Change{Category: change.Unreviewed, PreviousRevision: base, Approvals: []change.Approval{},
				ChangesRequested: []string{}, Governance: rules.Edits(targetRules)}
		}
		if co.Plain && fixed == nil && prErr == nil {
			return nil, errors.New("--change: required when --repo is not a git repository's root (or pass --pr N)")
		}
		g.basis = b
		return g, nil
	case prErr != nil:
		g.basis = &trust.Basis{Base: base, Rules: rules, ChangeErr: prErr}
		return g, nil
	}
	judge.Fixed = fixed
	if g.gh != nil {
		judge.Changes, judge.Teams = g.gh, g.gh
	} else {
		judge.Changes = change.NewTrailers(co.readCommit)
	}
	if g.basis, err = judge.For(ctx, base, co.Revision, targetRules); err != nil {
		return nil, err
	}
	return g, nil
}

// basisOf is the basis of every cluster: on the command line one base
// judges them all.
func (g *gate) basisOf(context.Context, *fleet.Cluster) (*trust.Basis, error) { return g.basis, nil }

// githubClient returns the GitHub client of --github-repo, else of the
// rules' change source.
func (cf *changeFlags) githubClient(src fleet.ChangeSource) (*change.GitHub, error) {
	owner, repo := src.GitHub.Owner, src.GitHub.Repo
	if cf.githubRepo != "" {
		var ok bool
		owner, repo, ok = strings.Cut(cf.githubRepo, "/")
		if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
			return nil, fmt.Errorf("--github-repo %q: expected OWNER/REPO", cf.githubRepo)
		}
	}
	if why := insecureURL(cf.githubAPI); why != "" && !cf.insecure {
		return nil, fmt.Errorf("--github-api %s: %s", cf.githubAPI, why)
	}
	opts := change.GitHubOptions{Owner: owner, Repo: repo, BaseURL: cf.githubAPI}
	app, err := appFromEnv()
	if err != nil {
		return nil, err
	}
	if app != nil {
		opts.App = app
	} else if opts.Token, err = change.TokenFromEnvOrFile(os.Getenv("GITHUB_TOKEN_FILE")); err != nil {
		return nil, err
	}
	return change.NewGitHub(opts)
}

// appFromEnv reads GitHub App authentication from GITHUB_APP_ID,
// GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY_FILE; nil when
// GITHUB_APP_ID is unset.
func appFromEnv() (*change.AppAuth, error) {
	id := os.Getenv("GITHUB_APP_ID")
	if id == "" {
		return nil, nil
	}
	appID, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("GITHUB_APP_ID %q: expected a number", id)
	}
	inst, err := strconv.ParseInt(os.Getenv("GITHUB_APP_INSTALLATION_ID"), 10, 64)
	if err != nil {
		return nil, errors.New("GITHUB_APP_INSTALLATION_ID: expected the installation's number with GITHUB_APP_ID")
	}
	keyFile := os.Getenv("GITHUB_APP_PRIVATE_KEY_FILE")
	if keyFile == "" {
		return nil, errors.New("GITHUB_APP_PRIVATE_KEY_FILE: required with GITHUB_APP_ID")
	}
	return change.AppAuthFromFile(appID, inst, keyFile)
}

// readCommit returns the message and author of revision from the
// checkout's history, for the trailers change source.
func (co *checkout) readCommit(_ context.Context, revision string) (string, string, error) {
	if co.History == nil {
		return "", "", errors.New("no git history")
	}
	c, err := co.History.Commit(revision)
	if err != nil {
		return "", "", err
	}
	return c.Message, fmt.Sprintf("%s <%s>", c.Author, c.Email), nil
}

// readChangeFile reads --change FILE; nil without one.
func readChangeFile(file, revision string) (*change.Change, error) {
	if file == "" {
		return nil, nil
	}
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
