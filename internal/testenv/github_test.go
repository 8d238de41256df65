package testenv_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/testenv"
)

// ghGet sends a GET to the fake with header Authorization: auth (if any) and
// returns the response and its body.
func ghGet(t *testing.T, url, auth string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestFakeGitHubReviewPagination(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	f.AddPullRequest(testenv.PR{Number: 3, Author: "alice", HeadSHA: "h"})
	for range 250 {
		f.AddReview(3, testenv.Review{User: "bob", State: "COMMENTED"})
	}
	base := f.URL() + "repos/acme/fleet-config/pulls/3/reviews"
	tests := []struct {
		query string
		items int
		links map[string]string // rel → page
	}{
		{query: "?per_page=100", items: 100, links: map[string]string{"next": "2", "last": "3"}},
		{query: "?per_page=100&page=2", items: 100, links: map[string]string{"next": "3", "last": "3", "first": "1", "prev": "1"}},
		{query: "?per_page=100&page=3", items: 50, links: map[string]string{"first": "1", "prev": "2"}},
		{query: "", items: 30, links: map[string]string{"next": "2", "last": "9"}},
		{query: "?per_page=100&page=9", items: 0, links: map[string]string{"first": "1", "prev": "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := ghGet(t, base+tt.query, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var items []map[string]any
			if err := json.Unmarshal(body, &items); err != nil {
				t.Fatal(err)
			}
			if len(items) != tt.items {
				t.Errorf("items = %d, want %d", len(items), tt.items)
			}
			if diff := cmp.Diff(tt.links, parseLinks(t, resp.Header.Get("Link"))); diff != "" {
				t.Errorf("Link pages (-want +got):\n%s", diff)
			}
		})
	}
}

// parseLinks reads an RFC 5988 Link header into rel → page query value.
func parseLinks(t *testing.T, header string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		url, rel, ok := strings.Cut(part, ">; rel=")
		if !ok || !strings.HasPrefix(url, "<") {
			t.Fatalf("bad link %q", part)
		}
		_, q, _ := strings.Cut(url, "?")
		for _, kv := range strings.Split(q, "&") {
			if v, ok := strings.CutPrefix(kv, "page="); ok {
				out[strings.Trim(rel, `"`)] = v
			}
		}
	}
	return out
}

func TestFakeGitHubRateLimitHeaders(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	resp, _ := ghGet(t, f.URL()+"repos/acme/fleet-config/pulls/1", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown pull request: status %d, want 404", resp.StatusCode)
	}
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Used", "X-RateLimit-Resource"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		t.Error("remaining 0 before any rate limit")
	}

	until := time.Now().Add(90 * time.Minute)
	f.RateLimit(until)
	resp, body := ghGet(t, f.URL()+"repos/acme/fleet-config/pulls/1", "")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("rate limited: status %d, remaining %q; want 403, 0", resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"))
	}
	reset, _ := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if reset < until.Unix() || reset > until.Unix()+1 {
		t.Errorf("X-RateLimit-Reset = %d, want %d rounded up", reset, until.Unix())
	}
	if !strings.Contains(string(body), "API rate limit exceeded") {
		t.Errorf("body = %s, want GitHub's rate-limit message", body)
	}
}

func TestFakeGitHubAuthRepoAndFailures(t *testing.T) {
	f := testenv.NewFakeGitHub(t)
	f.AddCommit("c1", "Alice <alice@example.com>", "msg", true)
	f.RequireToken("s3cret")
	commit := f.URL() + "repos/acme/fleet-config/commits/c1"
	tests := []struct {
		name, url, auth string
		status          int
	}{
		{name: "no token", url: commit, status: 401},
		{name: "wrong token", url: commit, auth: "Bearer nope", status: 401},
		{name: "bearer", url: commit, auth: "Bearer s3cret", status: 200},
		{name: "token scheme", url: commit, auth: "token s3cret", status: 200},
		{name: "enterprise prefix", url: f.URL() + "api/v3/repos/acme/fleet-config/commits/c1", auth: "token s3cret", status: 200},
		{name: "another repository", url: f.URL() + "repos/acme/other/commits/c1", auth: "token s3cret", status: 404},
		{name: "unknown commit", url: f.URL() + "repos/acme/fleet-config/commits/c2", auth: "token s3cret", status: 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ghGet(t, tt.url, tt.auth)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
		})
	}

	_, body := ghGet(t, commit, "Bearer s3cret")
	var c struct {
		SHA    string `json:"sha"`
		Commit struct {
			Author struct {
				Name  string `json:"name"`
				Email string `json:"email"`
			} `json:"author"`
			Message      string `json:"message"`
			Verification struct {
				Verified bool   `json:"verified"`
				Reason   string `json:"reason"`
			} `json:"verification"`
		} `json:"commit"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if c.SHA != "c1" || c.Commit.Author.Name != "Alice" || c.Commit.Author.Email != "alice@example.com" ||
		c.Commit.Message != "msg" || !c.Commit.Verification.Verified || c.Commit.Verification.Reason != "valid" {
		t.Errorf("commit = %+v", c)
	}

	before := f.RequestCount()
	f.FailNext(2, 502)
	var got []int
	for range 3 {
		resp, _ := ghGet(t, commit, "Bearer s3cret")
		got = append(got, resp.StatusCode)
	}
	if diff := cmp.Diff([]int{502, 502, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if n := f.RequestCount() - before; n != 3 {
		t.Errorf("requests counted = %d, want 3", n)
	}

	f.SetLatency(100 * time.Millisecond)
	start := time.Now()
	ghGet(t, commit, "Bearer s3cret")
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answer after %s, want the 100ms latency", d)
	}
}
