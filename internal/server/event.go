package server

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/convoy-gitops/convoy/internal/queue"
	"github.com/google/go-github/v60/github"
)

// Statuses of a delivery, as the webhook's JSON reply names them.
const (
	StatusQueued  = "queued"  // work was queued (or folded into queued work)
	StatusIgnored = "ignored" // a valid delivery convoy does not act on
	StatusPong    = "pong"    // the reply to GitHub's ping
)

// Decision is what convoy does with a verified delivery.
type Decision struct {
	// Status is StatusQueued, StatusIgnored or StatusPong.
	Status string
	// Action is the payload's action (pull_request, pull_request_review).
	Action string
	// Reason says why a delivery is ignored.
	Reason string
	// Item is the work to queue when Status is StatusQueued, else nil.
	Item *queue.Item
}

// Target is what the webhook acts on: one repository and its tracked branch.
type Target struct {
	Repo   string // owner/repo, compared without regard to case as GitHub does
	Branch string // e.g. main
}

// ParseEvent decides what a delivery of event with payload body asks of
// convoy. Events, actions, repositories and refs convoy does not act on are
// ignored, not errors; an error means the payload is malformed for its event
// (the webhook answers 400).
func ParseEvent(event string, body []byte, t Target) (Decision, error) {
	switch event {
	case "ping":
		return Decision{Status: StatusPong}, nil
	case "push", "pull_request", "pull_request_review":
	default:
		return ignore("", "event %q is not used", event)
	}
	payload, err := github.ParseWebHook(event, body)
	if err != nil {
		return Decision{}, fmt.Errorf("%s payload: %w", event, err)
	}
	switch e := payload.(type) {
	case *github.PushEvent:
		return decidePush(e, t)
	case *github.PullRequestEvent:
		switch e.GetAction() {
		case "opened", "synchronize", "reopened", "labeled", "unlabeled", "edited":
		default:
			return ignore(e.GetAction(), "pull_request action %q is not used", e.GetAction())
		}
		return decidePlan(event, e.GetAction(), e.GetRepo(), e.GetPullRequest(), t)
	case *github.PullRequestReviewEvent:
		switch e.GetAction() {
		case "submitted", "dismissed", "edited":
		default:
			return ignore(e.GetAction(), "pull_request_review action %q is not used", e.GetAction())
		}
		return decidePlan(event, e.GetAction(), e.GetRepo(), e.GetPullRequest(), t)
	}
	return Decision{}, fmt.Errorf("%s payload: unexpected type %T", event, payload)
}

func decidePush(e *github.PushEvent, t Target) (Decision, error) {
	if name := e.GetRepo().GetFullName(); !strings.EqualFold(name, t.Repo) {
		return ignore("", "repository %q is not %s", name, t.Repo)
	}
	ref, after := e.GetRef(), e.GetAfter()
	if ref != "refs/heads/"+t.Branch {
		return ignore("", "ref %q is not the tracked branch %s", ref, t.Branch)
	}
	if e.GetDeleted() || strings.Trim(after, "0") == "" {
		return ignore("", "branch %s was deleted", t.Branch)
	}
	if !isSHA(after) {
		return Decision{}, fmt.Errorf("push payload: after %q is not a commit SHA", after)
	}
	return Decision{Status: StatusQueued, Item: &queue.Item{Kind: queue.KindPush, Ref: ref, SHA: after}}, nil
}

func decidePlan(event, action string, repo *github.Repository, pr *github.PullRequest, t Target) (Decision, error) {
	if name := repo.GetFullName(); !strings.EqualFold(name, t.Repo) {
		return ignore(action, "repository %q is not %s", name, t.Repo)
	}
	if pr == nil {
		return Decision{}, fmt.Errorf("%s payload: no pull_request", event)
	}
	// Only pull requests into the tracked branch become rollouts; plans of
	// the others would judge a change that is not coming.
	if base := pr.GetBase().GetRef(); base != t.Branch {
		return ignore(action, "pull request #%d targets %q, not the tracked branch %s", pr.GetNumber(), base, t.Branch)
	}
	n, sha := pr.GetNumber(), pr.GetHead().GetSHA()
	if n <= 0 {
		return Decision{}, fmt.Errorf("%s payload: pull request number %d", event, n)
	}
	if !isSHA(sha) {
		return Decision{}, fmt.Errorf("%s payload: pull request #%d head sha %q is not a commit SHA", event, n, sha)
	}
	return Decision{Status: StatusQueued, Action: action, Item: &queue.Item{Kind: queue.KindPlan, PR: n, SHA: sha}}, nil
}

func ignore(action, format string, args ...any) (Decision, error) {
	return Decision{Status: StatusIgnored, Action: action, Reason: fmt.Sprintf(format, args...)}, nil
}

// isSHA reports whether s is a full SHA-1 or SHA-256 object name.
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
