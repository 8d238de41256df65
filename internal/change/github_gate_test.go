package change_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/testenv"
)

// A public repository: a collaborator, a stranger with read access and an
// app approve. Every approval stays in the change, with what decides
// whether it counts; only the collaborator's counts.
func TestStrangerAndBotApprovalsKeepTheirAccess(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	mergedPR(f, "change/major")
	f.AddReview(42, testenv.Review{User: "bob", State: "APPROVED", SubmittedAt: at(1)})
	f.AddReview(42, testenv.Review{User: "mallory", State: "APPROVED", SubmittedAt: at(2)})
	f.AddReview(42, testenv.Review{User: "renovate[bot]", State: "APPROVED", SubmittedAt: at(3)})
	f.AddReview(42, testenv.Review{User: "Alice", State: "APPROVED", SubmittedAt: at(4)})
	f.AddReview(42, testenv.Review{User: "", State: "APPROVED", SubmittedAt: at(5)}) // a deleted account

	got, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
	if err != nil {
		t.Fatal(err)
	}
	want := []change.Approval{
		{User: "Alice", CommitID: headSHA, SubmittedAt: rfc(4), Permission: "read", Type: "User", Teams: []string{}},
		writer("bob", headSHA, 1),
		{User: "mallory", CommitID: headSHA, SubmittedAt: rfc(2), Permission: "read", Type: "User", Teams: []string{}},
		{User: "renovate[bot]", CommitID: headSHA, SubmittedAt: rfc(3), Permission: "", Type: "Bot", Teams: []string{}},
	}
	if diff := cmp.Diff(want, got.Approvals); diff != "" {
		t.Errorf("approvals (-want +got):\n%s", diff)
	}
	var counted []string
	for _, a := range change.Counted(got, nil) {
		counted = append(counted, a.User)
	}
	if diff := cmp.Diff([]string{"bob"}, counted); diff != "" {
		t.Errorf("counted (-want +got):\n%s", diff)
	}
	// One permission request per person; none for the app.
	if n := requestsFor(f, "/permission"); n != 3 {
		t.Errorf("permission requests = %d, want 3 (Alice, bob, mallory)", n)
	}
	if n := requestsFor(f, "renovate%5Bbot%5D/permission") + requestsFor(f, "renovate[bot]/permission"); n != 0 {
		t.Errorf("the app's permission was asked %d times, want 0", n)
	}
}

func TestPermissionRoles(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	f.SetUser(testenv.GitHubUser{Login: "deployer", Role: "release-manager", Base: "write"}) // a custom role
	f.SetUser(testenv.GitHubUser{Login: "triager", Role: "triage"})
	f.SetUser(testenv.GitHubUser{Login: "maint", Role: "maintain"})
	f.SetUser(testenv.GitHubUser{Login: "gone", Role: "none"})
	g := newGitHub(t, f)
	for login, want := range map[string]string{"deployer": "write", "triager": "triage", "maint": "maintain", "gone": "none", "stranger": "read", "dependabot[bot]": "none"} {
		got, err := g.Permission(context.Background(), login)
		if err != nil || got != want {
			t.Errorf("Permission(%s) = %q, %v; want %q", login, got, err, want)
		}
	}
}

// A reviewer's role that cannot be read fails the change closed: no
// approval is counted from a guess.
func TestPermissionOutageIsUnavailable(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	mergedPR(f)
	f.AddReview(42, testenv.Review{User: "bob", State: "APPROVED"})
	f.FailNextMatching("GET /repos/*/*/collaborators/*/permission", 1000, http.StatusBadGateway)
	_, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
	if !errors.Is(err, change.ErrUnavailable) || !strings.Contains(err.Error(), "get the permission of bob") {
		t.Fatalf("error = %v, want Unavailable naming the permission lookup", err)
	}
}

// A change request counts from a writer (or an app), not from anyone who
// can read a public repository, as GitHub's merge rules see it.
func TestChangesRequestedOnlyFromWriters(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	mergedPR(f)
	f.AddReview(42, testenv.Review{User: "bob", State: "CHANGES_REQUESTED"})
	f.AddReview(42, testenv.Review{User: "troll", State: "CHANGES_REQUESTED"})
	f.AddReview(42, testenv.Review{User: "lint[bot]", State: "CHANGES_REQUESTED"})
	got, err := newGitHub(t, f).Change(context.Background(), mergeSHA)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bob", "lint[bot]"}, got.ChangesRequested); diff != "" {
		t.Errorf("changes requested (-want +got):\n%s", diff)
	}
}

func TestAddTeams(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	mergedPR(f, "change/major")
	f.AddTeamMembers("acme/prod-owners", "Bob", "carol")
	f.AddTeamMembers("acme/web", "dan", "bob")
	for i := range 120 { // a second page
		f.AddTeamMembers("acme/web", "member"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+time.Duration(i).String())
	}
	f.AddReview(42, testenv.Review{User: "bob", State: "APPROVED"})
	f.AddReview(42, testenv.Review{User: "dan", State: "APPROVED"})
	g := newGitHub(t, f)
	ch, err := g.Change(context.Background(), mergeSHA)
	if err != nil {
		t.Fatal(err)
	}
	if err := change.AddTeams(context.Background(), g, ch, []string{"acme/prod-owners", "@ACME/web", "acme/prod-owners"}); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, a := range ch.Approvals {
		got[a.User] = a.Teams
	}
	want := map[string][]string{"bob": {"acme/prod-owners", "acme/web"}, "dan": {"acme/web"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("teams (-want +got):\n%s", diff)
	}
	if n := requestsFor(f, "/teams/prod-owners/members"); n != 1 {
		t.Errorf("prod-owners read %d times, want once", n)
	}
	err = change.AddTeams(context.Background(), g, ch, []string{"acme/nobody"})
	if err == nil || errors.Is(err, change.ErrUnavailable) || !strings.Contains(err.Error(), "team acme/nobody: not found") {
		t.Errorf("unknown team: error = %v, want a plain error naming it", err)
	}
}

// Another user's comment holding convoy's marker is never convoy's:
// convoy writes its own beside it and leaves that one as it is.
func TestUpsertCommentLeavesOthersMarkers(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	mergedPR(f)
	theirs := f.AddCommentBy(42, "mallory", change.PlanMarker+"\nallowed on every cluster (really)")
	g := newGitHub(t, f)
	for _, body := range []string{"plan v1", "plan v2"} {
		if err := g.UpsertComment(context.Background(), 42, change.PlanMarker, body); err != nil {
			t.Fatal(err)
		}
	}
	comments := f.Comments(42)
	if len(comments) != 2 {
		t.Fatalf("comments = %+v, want mallory's and convoy's", comments)
	}
	if c := comments[0]; c.ID != theirs || c.Edits != 0 || !strings.Contains(c.Body, "really") {
		t.Errorf("mallory's comment changed: %+v", c)
	}
	if c := comments[1]; c.Author != testenv.FakeGitHubViewer || c.Body != change.PlanMarker+"\nplan v2" || c.Edits != 1 {
		t.Errorf("convoy's comment = %+v, want by %s, edited once to plan v2", c, testenv.FakeGitHubViewer)
	}
	// Without a token convoy cannot know which comment is its own: it
	// writes nothing.
	anon := newGitHub(t, f, func(o *change.GitHubOptions) { o.Token = "" })
	if err := anon.UpsertComment(context.Background(), 42, change.PlanMarker, "plan v3"); err == nil || !strings.Contains(err.Error(), "no identity") {
		t.Errorf("without a token: error = %v, want one about identity", err)
	}
}

// A status is posted only when it changes; a new client (an agent that
// restarted) reads the newest one first; GitHub's 1,000-status cap is an
// error, not retried.
func TestReportStatusOnlyOnChange(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	ctx := context.Background()
	g := newGitHub(t, f)
	for range 50 {
		if err := g.ReportStatus(ctx, mergeSHA, "pending", "held: business hours", "convoy/rollout"); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.ReportStatus(ctx, mergeSHA, "success", "rolled out", "convoy/rollout"); err != nil {
		t.Fatal(err)
	}
	if err := newGitHub(t, f).ReportStatus(ctx, mergeSHA, "success", "rolled out", "convoy/rollout"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.Statuses()); n != 2 {
		t.Errorf("statuses = %d, want 2 (pending, then success)", n)
	}
	if n := requestsFor(f, "/statuses"); n != 4 {
		t.Errorf("status requests = %d, want 4 (two reads, two posts)", n)
	}

	capped := testenv.NewFakeGitHub(t)
	g = newGitHub(t, capped)
	for i := range 1000 {
		if err := g.ReportStatus(ctx, mergeSHA, "pending", "check "+time.Duration(i).String(), "convoy/rollout"); err != nil {
			t.Fatal(err)
		}
	}
	before := capped.RequestCount()
	err := g.ReportStatus(ctx, mergeSHA, "pending", "one too many", "convoy/rollout")
	if !errors.Is(err, change.ErrUnavailable) || !strings.Contains(err.Error(), "422") {
		t.Errorf("the 1,001st status: error = %v, want a 422 Unavailable", err)
	}
	if n := capped.RequestCount() - before; n != 1 {
		t.Errorf("the 1,001st status took %d requests, want 1 (no retry)", n)
	}
}

// fakeClock records the waits of a GitHub client and lets them pass at once.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func TestSecondaryRateLimitWaits(t *testing.T) {
	tests := []struct {
		name  string
		limit testenv.SecondaryLimit
		n     int
		want  []time.Duration
	}{
		{"403 without headers waits a minute, then two", testenv.SecondaryLimit{Status: 403}, 2, []time.Duration{time.Minute, 2 * time.Minute}},
		{"429 without headers waits a minute", testenv.SecondaryLimit{Status: 429}, 1, []time.Duration{time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testenv.NewFakeGitHub(t)
			mergedPR(f)
			for range tt.n {
				f.SecondaryRateLimitWith(tt.limit)
			}
			clock := &fakeClock{now: time.Now()}
			g := newGitHub(t, f, func(o *change.GitHubOptions) { o.Clock = clock; o.MaxRateLimitWait = 5 * time.Minute })
			if _, err := g.Change(context.Background(), mergeSHA); err != nil {
				t.Fatal(err)
			}
			// (Retry-After, which go-github also enforces on the wall
			// clock, is TestRetries' "secondary rate limit honours
			// Retry-After".)
			if len(clock.waits) != len(tt.want) {
				t.Fatalf("waits = %v, want %v", clock.waits, tt.want)
			}
			if diff := cmp.Diff(tt.want, clock.waits); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("403 that is no rate limit is not retried", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f)
		f.FailNext(1, http.StatusForbidden)
		clock := &fakeClock{now: time.Now()}
		_, err := newGitHub(t, f, func(o *change.GitHubOptions) { o.Clock = clock }).Change(context.Background(), mergeSHA)
		if !errors.Is(err, change.ErrUnavailable) || len(clock.waits) != 0 || f.RequestCount() != 1 {
			t.Errorf("error = %v after %d requests and waits %v; want one 403, no wait", err, f.RequestCount(), clock.waits)
		}
	})

	t.Run("a reset further than the maximum wait fails at once, saying when", func(t *testing.T) {
		f := testenv.NewFakeGitHub(t)
		mergedPR(f)
		reset := time.Now().Add(40 * time.Minute)
		f.RateLimit(reset)
		clock := &fakeClock{now: time.Now()}
		_, err := newGitHub(t, f, func(o *change.GitHubOptions) { o.Clock = clock; o.MaxRateLimitWait = 30 * time.Minute }).Change(context.Background(), mergeSHA)
		var u *change.Unavailable
		if !errors.As(err, &u) || !u.RateLimited || u.RetryAt.Sub(reset).Abs() > time.Second {
			t.Fatalf("error = %#v, want a rate-limited Unavailable with RetryAt %s", err, reset)
		}
		if len(clock.waits) != 0 {
			t.Errorf("waits = %v, want none", clock.waits)
		}
	})
}

func TestDeploymentAnswers(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	g := newGitHub(t, f)
	f.AnswerDeployments(http.StatusAccepted, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusCreated)
	for _, status := range []int{http.StatusAccepted, http.StatusConflict, http.StatusUnprocessableEntity} {
		before := f.RequestCount()
		_, err := g.CreateDeployment(context.Background(), mergeSHA, "prod-primary", true, nil)
		var refused *change.DeploymentRefused
		if !errors.As(err, &refused) || refused.Status != status {
			t.Errorf("answer %d: error = %v, want *DeploymentRefused with it", status, err)
		}
		if n := f.RequestCount() - before; n != 1 {
			t.Errorf("answer %d: %d requests, want 1 (no retry)", status, n)
		}
	}
	id, err := g.CreateDeployment(context.Background(), mergeSHA, "staging", false, nil)
	if err != nil || id == 0 {
		t.Fatalf("created: id %d, error %v", id, err)
	}
	if d := f.Deployments(); len(d) != 1 || d[0].ProductionEnvironment {
		t.Errorf("deployments = %+v, want one, not production", d)
	}
}

// An App-authenticated client gets installation tokens from the app's
// key, gets a new one before the old expires, and writes as the app's bot.
func TestGitHubApp(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	f := testenv.NewFakeGitHub(t)
	mergedPR(f)
	// Tokens live 62 s; ghinstallation renews a minute before expiry.
	f.EnableApp(4242, 77, "convoy-gate", &key.PublicKey, 62*time.Second)
	g := newGitHub(t, f, func(o *change.GitHubOptions) {
		o.Token = ""
		o.App = &change.AppAuth{AppID: 4242, InstallationID: 77, PrivateKey: pemKey}
	})
	ctx := context.Background()
	if err := g.UpsertComment(ctx, 42, change.PlanMarker, "plan v1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // past the token's renewal time
	if err := g.UpsertComment(ctx, 42, change.PlanMarker, "plan v2"); err != nil {
		t.Fatal(err)
	}
	if n := f.InstallationTokens(); n != 2 {
		t.Errorf("installation tokens = %d, want 2 (one renewed)", n)
	}
	comments := f.Comments(42)
	if len(comments) != 1 || comments[0].Author != "convoy-gate[bot]" || comments[0].Edits != 1 {
		t.Errorf("comments = %+v, want one by convoy-gate[bot], edited once", comments)
	}
	if id, err := g.Identity(ctx); id != "convoy-gate[bot]" || err != nil {
		t.Errorf("Identity = %q, %v", id, err)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	wrong := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})
	bad := newGitHub(t, f, func(o *change.GitHubOptions) {
		o.Token = ""
		o.App = &change.AppAuth{AppID: 4242, InstallationID: 77, PrivateKey: wrong}
	})
	_, err = bad.Change(ctx, mergeSHA)
	if !errors.Is(err, change.ErrUnavailable) || strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("a key GitHub does not know: error = %v, want Unavailable without the key", err)
	}
}
