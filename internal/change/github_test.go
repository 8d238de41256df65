package change_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

const (
	headSHA  = "1111111111111111111111111111111111111111"
	mergeSHA = "2222222222222222222222222222222222222222"
	oldSHA   = "3333333333333333333333333333333333333333"
	baseSHA  = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" // the fake's base commit
)

// newGitHub returns a change source on f with tiny backoffs, changed by mods.
func newGitHub(t *testing.T, f *testenv.FakeGitHub, mods ...func(*change.GitHubOptions)) *change.GitHub {
	t.Helper()
	opts := change.GitHubOptions{
		Owner:            testenv.FakeGitHubOwner,
		Repo:             testenv.FakeGitHubRepo,
		BaseURL:          f.URL(),
		Token:            "ghp_test",
		Backoff:          time.Millisecond,
		MaxBackoff:       4 * time.Millisecond,
		MaxRateLimitWait: 3 * time.Second,
	}
	for _, m := range mods {
		m(&opts)
	}
	g, err := change.NewGitHub(opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// mergedPR adds the merged pull request 42 by alice and its merge commit;
// bob, carol, dan, mia and zed may write to the repository.
func mergedPR(f *testenv.FakeGitHub, labels ...string) {
	f.AddCollaborators("write", "bob", "carol", "dan", "mia", "zed")
	f.AddPullRequest(testenv.PR{
		Number: 42, Title: "Scale web", Body: "## Rollback\nrevert", Author: "alice", Labels: labels,
		HeadSHA: headSHA, MergeCommitSHA: mergeSHA, Merged: true, Commits: []string{oldSHA},
	})
	f.AddCommit(mergeSHA, "Alice <alice@example.com>", "Merge pull request #42\n\nScale web", true)
}

func at(minute int) time.Time { return time.Date(2026, 3, 2, 10, minute, 0, 0, time.UTC) }

func rfc(minute int) string { return at(minute).Format(time.RFC3339) }

func TestChangeFromMergedPullRequest(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	mergedPR(f, "change/major", "area/web")
	f.AddReview(42, testenv.Review{User: "bob", State: "APPROVED", CommitID: oldSHA, SubmittedAt: at(1)})
	f.AddReview(42, testenv.Review{User: "carol", State: "CHANGES_REQUESTED", SubmittedAt: at(2)})

	got, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
	if err != nil {
		t.Fatal(err)
	}
	want := &change.Change{
		Revision: mergeSHA,
		Category: change.Major,
		PullRequest: &change.PullRequest{
			Number: 42, Title: "Scale web", Body: "## Rollback\nrevert", Author: "alice",
			Labels: []string{"change/major", "area/web"}, HeadSHA: headSHA, BaseSHA: baseSHA, Merged: true,
			URL: "https://github.com/acme/fleet-config/pull/42",
		},
		Approvals:        []change.Approval{writer("bob", oldSHA, 1)},
		ChangesRequested: []string{"carol"},
		Commit:           change.Commit{SHA: mergeSHA, Author: "Alice <alice@example.com>", Message: "Merge pull request #42\n\nScale web", Verified: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Change (-want +got):\n%s", diff)
	}
}

// writer is the approval by user, a writer, of commit at minute.
func writer(user, commit string, minute int) change.Approval {
	return change.Approval{User: user, CommitID: commit, SubmittedAt: rfc(minute), Permission: "write", Type: "User", Teams: []string{}}
}

func TestApprovalCounting(t *testing.T) {
	tests := []struct {
		name             string
		reviews          []testenv.Review
		approvals        []change.Approval
		changesRequested []string
	}{
		{
			name: "approve then changes requested",
			reviews: []testenv.Review{
				{User: "bob", State: "APPROVED", SubmittedAt: at(1)},
				{User: "bob", State: "CHANGES_REQUESTED", SubmittedAt: at(2)},
			},
			changesRequested: []string{"bob"},
		},
		{
			name: "changes requested then approve",
			reviews: []testenv.Review{
				{User: "bob", State: "CHANGES_REQUESTED", SubmittedAt: at(1)},
				{User: "bob", State: "APPROVED", SubmittedAt: at(2)},
			},
			approvals: []change.Approval{writer("bob", headSHA, 2)},
		},
		{
			name: "approve then dismissed",
			reviews: []testenv.Review{
				{User: "bob", State: "APPROVED", SubmittedAt: at(1)},
				{User: "bob", State: "DISMISSED", SubmittedAt: at(2)},
			},
		},
		{
			name:    "dismissed approval alone",
			reviews: []testenv.Review{{User: "bob", State: "DISMISSED", SubmittedAt: at(1)}},
		},
		{
			name: "comment after approve keeps the approval",
			reviews: []testenv.Review{
				{User: "bob", State: "APPROVED", SubmittedAt: at(1)},
				{User: "bob", State: "COMMENTED", SubmittedAt: at(2)},
			},
			approvals: []change.Approval{writer("bob", headSHA, 1)},
		},
		{
			name: "comment after changes requested keeps the request",
			reviews: []testenv.Review{
				{User: "bob", State: "CHANGES_REQUESTED", SubmittedAt: at(1)},
				{User: "bob", State: "COMMENTED", SubmittedAt: at(2)},
			},
			changesRequested: []string{"bob"},
		},
		{
			name: "pending ignored",
			reviews: []testenv.Review{
				{User: "bob", State: "APPROVED", SubmittedAt: at(1)},
				{User: "bob", State: "PENDING"},
				{User: "carol", State: "PENDING"},
			},
			approvals: []change.Approval{writer("bob", headSHA, 1)},
		},
		{
			name: "author self-approval and self changes-request ignored",
			reviews: []testenv.Review{
				{User: "alice", State: "APPROVED", SubmittedAt: at(1)},
				{User: "Alice", State: "CHANGES_REQUESTED", SubmittedAt: at(2)},
			},
		},
		{
			name: "two approvals by one person count once, the latest",
			reviews: []testenv.Review{
				{User: "bob", State: "APPROVED", CommitID: oldSHA, SubmittedAt: at(1)},
				{User: "bob", State: "APPROVED", SubmittedAt: at(5)},
			},
			approvals: []change.Approval{writer("bob", headSHA, 5)},
		},
		{
			name: "approval of an old commit keeps its commit_id",
			reviews: []testenv.Review{
				{User: "bob", State: "APPROVED", CommitID: oldSHA, SubmittedAt: at(1)},
				{User: "carol", State: "APPROVED", SubmittedAt: at(2)},
			},
			approvals: []change.Approval{
				writer("bob", oldSHA, 1),
				writer("carol", headSHA, 2),
			},
		},
		{
			name: "latest by submitted_at, not by list order",
			reviews: []testenv.Review{
				{User: "bob", State: "CHANGES_REQUESTED", SubmittedAt: at(9)},
				{User: "bob", State: "APPROVED", SubmittedAt: at(1)},
			},
			changesRequested: []string{"bob"},
		},
		{
			name: "same submitted_at: the later review wins",
			reviews: []testenv.Review{
				{User: "bob", State: "APPROVED", SubmittedAt: at(1)},
				{User: "bob", State: "CHANGES_REQUESTED", SubmittedAt: at(1)},
			},
			changesRequested: []string{"bob"},
		},
		{
			name: "approvals sorted by user",
			reviews: []testenv.Review{
				{User: "zed", State: "APPROVED", SubmittedAt: at(1)},
				{User: "bob", State: "APPROVED", SubmittedAt: at(2)},
				{User: "mia", State: "CHANGES_REQUESTED", SubmittedAt: at(3)},
				{User: "dan", State: "CHANGES_REQUESTED", SubmittedAt: at(4)},
			},
			approvals: []change.Approval{
				writer("bob", headSHA, 2),
				writer("zed", headSHA, 1),
			},
			changesRequested: []string{"dan", "mia"},
		},
		{name: "no reviews"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testenv.NewFakeGitHub(t)
			mergedPR(f)
			for _, r := range tt.reviews {
				f.AddReview(42, r)
			}
			got, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.approvals
			if want == nil {
				want = []change.Approval{}
			}
			if diff := cmp.Diff(want, got.Approvals); diff != "" {
				t.Errorf("approvals (-want +got):\n%s", diff)
			}
			wantCR := tt.changesRequested
			if wantCR == nil {
				wantCR = []string{}
			}
			if diff := cmp.Diff(wantCR, got.ChangesRequested); diff != "" {
				t.Errorf("changes requested (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApprovalsAcrossThreePages(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	mergedPR(f)
	for i := range 250 {
		r := testenv.Review{User: fmt.Sprintf("commenter%d", i%7), State: "COMMENTED"}
		switch i {
		case 4:
			r = testenv.Review{User: "bob", State: "APPROVED"}
		case 119:
			r = testenv.Review{User: "carol", State: "APPROVED"}
		case 229: // page 3: bob changes his mind
			r = testenv.Review{User: "bob", State: "CHANGES_REQUESTED"}
		case 248: // page 3
			r = testenv.Review{User: "dave", State: "APPROVED"}
		}
		f.AddReview(42, r)
	}
	got, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, a := range got.Approvals {
		users = append(users, a.User)
	}
	if diff := cmp.Diff([]string{"carol", "dave"}, users); diff != "" {
		t.Errorf("approvers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bob"}, got.ChangesRequested); diff != "" {
		t.Errorf("changes requested (-want +got):\n%s", diff)
	}
	var pages []string
	for _, r := range f.RequestLog() {
		if strings.Contains(r, "/pulls/42/reviews") {
			pages = append(pages, r)
		}
	}
	if len(pages) != 3 {
		t.Errorf("review requests = %q, want 3 pages", pages)
	}
}

func TestCategory(t *testing.T) {
	tests := []struct {
		name      string
		labels    []string
		want      string
		wantError string // substring; "" means no error
	}{
		{name: "no label means normal", labels: nil, want: change.Normal},
		{name: "other labels only", labels: []string{"area/web", "changelog"}, want: change.Normal},
		{name: "emergency", labels: []string{"bug", "change/emergency"}, want: change.Emergency},
		{name: "standard", labels: []string{"change/standard"}, want: change.Standard},
		{name: "major, any case", labels: []string{"Change/Major"}, want: change.Major},
		{name: "same category twice", labels: []string{"change/major", "change/MAJOR"}, want: change.Major},
		{name: "two categories", labels: []string{"change/major", "change/normal"}, wantError: "acme/fleet-config#42: conflicting change categories major, normal"},
		{name: "unknown category", labels: []string{"change/foo"}, wantError: `acme/fleet-config#42: unknown change category "foo"`},
		{name: "unreviewed is not a label category", labels: []string{"change/unreviewed"}, wantError: "unknown change category"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testenv.NewFakeGitHub(t)
			mergedPR(f, tt.labels...)
			got, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantError)
				}
				if !errors.Is(err, change.ErrInvalidCategory) || errors.Is(err, change.ErrUnavailable) {
					t.Errorf("error %v: want ErrInvalidCategory and not ErrUnavailable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Category != tt.want {
				t.Errorf("category = %q, want %q", got.Category, tt.want)
			}
		})
	}
}

func TestConflictingCategoriesIsTyped(t *testing.T) {
	_, err := change.CategoryFromLabels("acme/x#1", []string{"change/normal", "change/emergency"})
	var conflict *change.ConflictingCategories
	if !errors.As(err, &conflict) {
		t.Fatalf("error = %v, want *ConflictingCategories", err)
	}
	if diff := cmp.Diff([]string{"emergency", "normal"}, conflict.Categories); diff != "" {
		t.Errorf("categories (-want +got):\n%s", diff)
	}
	_, err = change.CategoryFromLabels("acme/x#1", []string{"change/foo"})
	var unknown *change.UnknownCategory
	if !errors.As(err, &unknown) || unknown.Value != "foo" {
		t.Errorf("error = %v, want *UnknownCategory for foo", err)
	}
}

func TestNoPullRequestIsUnreviewed(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	f.AddCommit(mergeSHA, "Eve <eve@example.com>", "hotfix pushed to main", false)
	got, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"revision":"` + mergeSHA + `","previous_revision":"","category":"unreviewed","pull_request":null,` +
		`"approvals":[],"changes_requested":[],"commit":{"sha":"` + mergeSHA + `","author":"Eve \u003ceve@example.com\u003e",` +
		`"message":"hotfix pushed to main","verified":false}}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("change JSON (-want +got):\n%s", diff)
	}
}

func TestPullRequestChoice(t *testing.T) {
	tests := []struct {
		name string
		prs  []testenv.PR
		want int // 0: none
	}{
		{
			name: "merged pull request preferred over an open one",
			prs: []testenv.PR{
				{Number: 1, Author: "x", HeadSHA: "h1", Commits: []string{mergeSHA}},
				{Number: 2, Author: "x", HeadSHA: "h2", MergeCommitSHA: mergeSHA, Merged: true},
			},
			want: 2,
		},
		{
			name: "merged with this merge commit preferred over another merged one",
			prs: []testenv.PR{
				{Number: 3, Author: "x", HeadSHA: "h3", MergeCommitSHA: "m3", Merged: true, Commits: []string{mergeSHA}},
				{Number: 4, Author: "x", HeadSHA: "h4", MergeCommitSHA: mergeSHA, Merged: true},
			},
			want: 4,
		},
		{
			name: "any merged one before open ones",
			prs: []testenv.PR{
				{Number: 5, Author: "x", HeadSHA: "h5", Commits: []string{mergeSHA}},
				{Number: 6, Author: "x", HeadSHA: "h6", MergeCommitSHA: "m6", Merged: true, Commits: []string{mergeSHA}},
			},
			want: 6,
		},
		{
			name: "first open one",
			prs: []testenv.PR{
				{Number: 7, Author: "x", HeadSHA: "h7", Closed: true, Commits: []string{mergeSHA}},
				{Number: 8, Author: "x", HeadSHA: "h8", Commits: []string{mergeSHA}},
				{Number: 9, Author: "x", HeadSHA: "h9", Commits: []string{mergeSHA}},
			},
			want: 8,
		},
		{
			name: "closed without merge is no pull request",
			prs:  []testenv.PR{{Number: 10, Author: "x", HeadSHA: "h10", Closed: true, Commits: []string{mergeSHA}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testenv.NewFakeGitHub(t)
			for _, pr := range tt.prs {
				f.AddPullRequest(pr)
			}
			f.AddCommit(mergeSHA, "X <x@example.com>", "m", false)
			got, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
			if err != nil {
				t.Fatal(err)
			}
			number := 0
			if got.PullRequest != nil {
				number = got.PullRequest.Number
			}
			if number != tt.want {
				t.Errorf("pull request = %d, want %d", number, tt.want)
			}
			if tt.want == 0 && got.Category != change.Unreviewed {
				t.Errorf("category = %q, want unreviewed", got.Category)
			}
		})
	}
}

func TestPullRequestChange(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	f.AddPullRequest(testenv.PR{Number: 7, Title: "Add quota", Author: "alice", Labels: []string{"change/standard"}, HeadSHA: headSHA})
	f.AddCommit(headSHA, "Alice <alice@example.com>", "Add quota", false)
	f.AddReview(7, testenv.Review{User: "bob", State: "APPROVED", SubmittedAt: at(3)})
	f.AddCollaborators("maintain", "bob")

	got, err := newGitHub(t, f).PullRequestChange(context.Background(), 7)
	if err != nil {
		t.Fatal(err)
	}
	want := &change.Change{
		Revision: headSHA,
		Category: change.Standard,
		PullRequest: &change.PullRequest{Number: 7, Title: "Add quota", Author: "alice", Labels: []string{"change/standard"},
			HeadSHA: headSHA, BaseSHA: baseSHA, URL: "https://github.com/acme/fleet-config/pull/7"},
		Approvals:        []change.Approval{{User: "bob", CommitID: headSHA, SubmittedAt: rfc(3), Permission: "maintain", Type: "User", Teams: []string{}}},
		ChangesRequested: []string{},
		Commit:           change.Commit{SHA: headSHA, Author: "Alice <alice@example.com>", Message: "Add quota"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PullRequestChange (-want +got):\n%s", diff)
	}

	_, err = newGitHub(t, f).PullRequestChange(context.Background(), 99)
	if !errors.Is(err, change.ErrUnavailable) || !strings.Contains(err.Error(), "get pull request acme/fleet-config#99: 404 Not Found") {
		t.Errorf("missing pull request: error = %v, want a 404 Unavailable", err)
	}
}

// requestsFor counts the fake's requests whose log line holds s.
func requestsFor(f *testenv.FakeGitHub, s string) int {
	n := 0
	for _, r := range f.RequestLog() {
		if strings.Contains(r, s) {
			n++
		}
	}
	return n
}

func TestRetries(t *testing.T) {
	t.Run("two 500s then success", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f, "change/normal")
		f.AddReview(42, testenv.Review{User: "bob", State: "APPROVED"})
		f.FailNext(2, 500)
		got, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Approvals) != 1 {
			t.Errorf("approvals = %v, want bob's", got.Approvals)
		}
		if n := requestsFor(f, "/commits/"+mergeSHA+"/pulls"); n != 3 {
			t.Errorf("pull request lookups = %d, want 3 (two failed)", n)
		}
	})

	t.Run("502 forever gives up after 4 tries", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f)
		f.FailNext(1000, 502)
		_, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
		var u *change.Unavailable
		if !errors.As(err, &u) || !errors.Is(err, change.ErrUnavailable) {
			t.Fatalf("error = %v, want *Unavailable", err)
		}
		want := "list pull requests of acme/fleet-config@" + mergeSHA + ": 502 Bad Gateway after 4 tries"
		if err.Error() != want {
			t.Errorf("error = %q, want %q", err, want)
		}
		if u.Tries != 4 || u.Status != 502 || f.RequestCount() != 4 {
			t.Errorf("tries = %d, status = %d, requests = %d; want 4, 502, 4", u.Tries, u.Status, f.RequestCount())
		}
	})

	t.Run("reviews failing fail the change", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f)
		f.FailNextMatching("GET /repos/*/*/pulls/*/reviews", 1000, 502)
		_, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
		if want := "list reviews of acme/fleet-config#42: 502 Bad Gateway after 4 tries"; err == nil || err.Error() != want {
			t.Fatalf("error = %v, want %q", err, want)
		}
		if !errors.Is(err, change.ErrUnavailable) {
			t.Errorf("error = %v, want Unavailable", err)
		}
	})

	t.Run("failing commit read fails the change", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f)
		f.FailNextMatching("GET /repos/*/*/commits/*", 1000, 503)
		g := newGitHub(t, f, func(o *change.GitHubOptions) { o.MaxRetries = 1 })
		_, err := g.Change(context.Background(), mergeSHA)
		if want := "get commit acme/fleet-config@" + mergeSHA + ": 503 Service Unavailable after 2 tries"; err == nil || err.Error() != want {
			t.Fatalf("error = %v, want %q", err, want)
		}
	})

	t.Run("404 is not retried", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		g := newGitHub(t, f, func(o *change.GitHubOptions) { o.Repo = "other" })
		_, err := g.Change(context.Background(), mergeSHA)
		var u *change.Unavailable
		if !errors.As(err, &u) || u.Status != 404 || u.Tries != 1 {
			t.Fatalf("error = %#v, want a 404 Unavailable after 1 try", err)
		}
		if f.RequestCount() != 1 {
			t.Errorf("requests = %d, want 1", f.RequestCount())
		}
	})

	t.Run("rate limit resetting in 1s is waited for", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f)
		f.RateLimit(time.Now().Add(time.Second))
		start := time.Now()
		if _, err := newGitHub(t, f).Change(context.Background(), mergeSHA); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 500*time.Millisecond || d > 3*time.Second {
			t.Errorf("took %s, want about a second", d)
		}
		if n := requestsFor(f, "/commits/"+mergeSHA+"/pulls"); n != 2 {
			t.Errorf("pull request lookups = %d, want 2 (one rate-limited)", n)
		}
	})

	t.Run("rate limit resetting in an hour gives up at once", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f)
		f.RateLimit(time.Now().Add(time.Hour))
		start := time.Now()
		_, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
		var u *change.Unavailable
		if !errors.As(err, &u) || !u.RateLimited {
			t.Fatalf("error = %v, want a rate-limited Unavailable", err)
		}
		if !strings.Contains(err.Error(), "rate limited until") {
			t.Errorf("error = %q, want it to say until when", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %s, want no wait", d)
		}
	})

	t.Run("secondary rate limit honours Retry-After", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f)
		f.SecondaryRateLimit(1, time.Second)
		start := time.Now()
		if _, err := newGitHub(t, f).Change(context.Background(), mergeSHA); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("took %s, want at least the second of Retry-After", d)
		}
	})

	t.Run("slow server and a deadline", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f)
		f.SetLatency(5 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := newGitHub(t, f).Change(ctx, mergeSHA)
		if !errors.Is(err, change.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want Unavailable and DeadlineExceeded", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %s, want about the 100ms deadline", d)
		}
	})

	t.Run("backoff longer than the deadline gives up at once", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f)
		f.FailNext(1000, 500)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		g := newGitHub(t, f, func(o *change.GitHubOptions) { o.Backoff, o.MaxBackoff = time.Minute, time.Minute })
		start := time.Now()
		_, err := g.Change(ctx, mergeSHA)
		if !errors.Is(err, change.ErrUnavailable) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("error = %v, want Unavailable naming the deadline", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %s, want no wait", d)
		}
	})
}

func TestTokenNeverInErrors(t *testing.T) {
	const token = "ghp_s3cr3tTokenValue0123456789abcdefABCD"
	f := testenv.NewFakeGitHub(t)
	mergedPR(f)
	f.RequireToken(token)

	withToken := func(tok string) func(*change.GitHubOptions) {
		return func(o *change.GitHubOptions) { o.Token = tok }
	}
	if _, err := newGitHub(t, f, withToken(token)).Change(context.Background(), mergeSHA); err != nil {
		t.Fatalf("with the token: %v", err)
	}

	var errs []error
	_, err := newGitHub(t, f, withToken("")).Change(context.Background(), mergeSHA)
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized: Requires authentication") {
		t.Errorf("without a token: error = %v, want 401", err)
	}
	errs = append(errs, err)
	_, err = newGitHub(t, f, withToken(token+"x")).Change(context.Background(), mergeSHA)
	errs = append(errs, err)
	f.FailNext(1000, 500)
	_, err = newGitHub(t, f, withToken(token)).Change(context.Background(), mergeSHA)
	errs = append(errs, err)
	// A server that echoes the token into its answer must not leak it either.
	g := newGitHub(t, f, withToken(token), func(o *change.GitHubOptions) { o.BaseURL = "http://127.0.0.1:1/" + token + "/" })
	_, err = g.Change(context.Background(), mergeSHA)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("want an error")
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("error holds the token: %v", err)
		}
	}
}

func TestUpsertComment(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	mergedPR(f)
	for i := range 120 { // the plan comment lands on the second page
		f.AddComment(42, fmt.Sprintf("comment %d", i))
	}
	g := newGitHub(t, f)
	ctx := context.Background()
	for _, body := range []string{"plan v1", "plan v2", "plan v2"} {
		if err := g.UpsertComment(ctx, 42, change.PlanMarker, body); err != nil {
			t.Fatal(err)
		}
	}
	var plans []testenv.GitHubComment
	for _, c := range f.Comments(42) {
		if strings.Contains(c.Body, change.PlanMarker) {
			plans = append(plans, c)
		}
	}
	if len(plans) != 1 {
		t.Fatalf("plan comments = %d, want 1: %+v", len(plans), plans)
	}
	if want := change.PlanMarker + "\nplan v2"; plans[0].Body != want || plans[0].Edits != 1 {
		t.Errorf("plan comment = %q after %d edits, want %q after 1", plans[0].Body, plans[0].Edits, want)
	}
	if n := len(f.Comments(42)); n != 121 {
		t.Errorf("comments = %d, want 121", n)
	}
}

func TestReportStatusAndDeployments(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	g := newGitHub(t, f)
	ctx := context.Background()
	long := strings.Repeat("x", 200)
	if err := g.ReportStatus(ctx, mergeSHA, "pending", "planning", "convoy/plan"); err != nil {
		t.Fatal(err)
	}
	f.FailNext(1, 502)
	if err := g.ReportStatus(ctx, mergeSHA, "success", long, "convoy/plan"); err != nil {
		t.Fatal(err)
	}
	wantStatuses := []testenv.GitHubStatus{
		{SHA: mergeSHA, State: "pending", Description: "planning", Context: "convoy/plan", Creator: testenv.FakeGitHubViewer},
		{SHA: mergeSHA, State: "success", Description: strings.Repeat("x", 139) + "…", Context: "convoy/plan", Creator: testenv.FakeGitHubViewer},
	}
	if diff := cmp.Diff(wantStatuses, f.Statuses(), cmpopts.IgnoreFields(testenv.GitHubStatus{}, "ID")); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}

	id, err := g.CreateDeployment(ctx, mergeSHA, "production", true, map[string]any{"wave": "primary"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetDeploymentStatus(ctx, id, "in_progress", "wave primary"); err != nil {
		t.Fatal(err)
	}
	if err := g.SetDeploymentStatus(ctx, id, "success", "done"); err != nil {
		t.Fatal(err)
	}
	wantDeployments := []testenv.GitHubDeployment{{
		ID: id, Ref: mergeSHA, Task: "deploy", Environment: "production", Description: "convoy rollout of " + mergeSHA,
		Payload: map[string]any{"wave": "primary"}, AutoMerge: false, RequiredContexts: []string{}, ProductionEnvironment: true,
	}}
	if diff := cmp.Diff(wantDeployments, f.Deployments()); diff != "" {
		t.Errorf("deployments (-want +got):\n%s", diff)
	}
	wantDS := []testenv.GitHubDeploymentStatus{
		{DeploymentID: id, State: "in_progress", Description: "wave primary"},
		{DeploymentID: id, State: "success", Description: "done"},
	}
	if diff := cmp.Diff(wantDS, f.DeploymentStatuses()); diff != "" {
		t.Errorf("deployment statuses (-want +got):\n%s", diff)
	}
	err = g.SetDeploymentStatus(ctx, id+1000, "success", "")
	if !errors.Is(err, change.ErrUnavailable) || !strings.Contains(err.Error(), "404") {
		t.Errorf("status of an unknown deployment: error = %v, want 404 Unavailable", err)
	}
}

func TestTokenFromEnvOrFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_TOKEN", "from-env")
	tests := []struct {
		name, file, want, wantError string
	}{
		{name: "file wins", file: file, want: "from-file"},
		{name: "env without a file", want: "from-env"},
		{name: "empty file", file: empty, wantError: "empty"},
		{name: "missing file", file: filepath.Join(dir, "nope"), wantError: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := change.TokenFromEnvOrFile(tt.file)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("error = %v, want %q", err, tt.wantError)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("= %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
