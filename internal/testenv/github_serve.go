package testenv

// How FakeGitHub answers every request: failures and rate limits it was
// told to give, who is calling, and its routes.

import (
	"fmt"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

func (f *FakeGitHub) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok && (p == "" || p[0] == '/') {
		r.URL.Path = p
		r.URL.RawPath = ""
	}

	f.mu.Lock()
	entry := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		entry += "?" + r.URL.RawQuery
	}
	f.requests = append(f.requests, entry)
	latency := f.latency
	f.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}

	f.mu.Lock()
	now := time.Now()
	limited := now.Before(f.limitedUntil)
	reset := now.Add(time.Hour)
	if limited {
		reset = f.limitedUntil
	}
	if !limited {
		f.used++
	}
	remaining := max(fakeGitHubRateLimit-f.used, 1)
	if limited {
		remaining = 0
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")

	failStatus := 0
	for i := range f.failures {
		fl := &f.failures[i]
		if fl.n == 0 {
			continue
		}
		if ok, _ := path.Match(fl.match, r.Method+" "+r.URL.Path); ok || fl.match == "" {
			fl.n--
			failStatus = fl.status
			break
		}
	}
	var secondary *SecondaryLimit
	if failStatus == 0 && len(f.secondary) > 0 {
		secondary = &f.secondary[0]
		f.secondary = f.secondary[1:]
	}
	if secondary == nil || secondary.Headers {
		h.Set("X-RateLimit-Limit", strconv.Itoa(fakeGitHubRateLimit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(reset.UnixNano())/1e9)), 10))
		h.Set("X-RateLimit-Used", strconv.Itoa(fakeGitHubRateLimit-remaining))
		h.Set("X-RateLimit-Resource", "core")
	}
	token := f.token
	app := f.app
	viewer := f.viewer
	f.mu.Unlock()

	switch {
	case failStatus != 0:
		writeGitHubError(w, failStatus, http.StatusText(failStatus))
		return
	case limited:
		writeGitHubError(w, http.StatusForbidden, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits")
		return
	case secondary != nil:
		if secondary.Headers {
			h.Set("Retry-After", strconv.Itoa(int(math.Ceil(secondary.RetryAfter.Seconds()))))
		}
		writeGitHubError(w, secondary.Status, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits")
		return
	}

	// Who is asking: nobody, the token's user, the app (JWT) or its
	// installation (an installation token).
	auth := r.Header.Get("Authorization")
	bearer, _ := strings.CutPrefix(auth, "Bearer ")
	if t, ok := strings.CutPrefix(auth, "token "); ok {
		bearer = t
	}
	caller := ""
	switch {
	case strings.HasPrefix(r.URL.Path, "/app"):
		if app == nil || !f.validJWT(bearer, app) {
			writeGitHubError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
			return
		}
		caller = "app"
	case app != nil && strings.HasPrefix(bearer, "ghs_"):
		f.mu.Lock()
		exp, ok := app.tokens[bearer]
		f.mu.Unlock()
		if !ok || !time.Now().Before(exp) {
			writeGitHubError(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
		caller = app.slug + "[bot]"
	case token != "":
		if auth == "" {
			writeGitHubError(w, http.StatusUnauthorized, "Requires authentication")
			return
		}
		if bearer != token {
			writeGitHubError(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
		caller = viewer
	case auth != "":
		caller = viewer
	}
	// GitHub answers writes and GET /user only to someone it knows.
	if caller == "" && (r.Method != http.MethodGet || r.URL.Path == "/user") {
		writeGitHubError(w, http.StatusUnauthorized, "Requires authentication")
		return
	}
	r.Header.Set(callerHeader, caller)
	f.mux.ServeHTTP(w, r)
}

// callerHeader carries, inside the fake, who a request is from.
const callerHeader = "X-Fake-Caller"

// validJWT checks an app's JWT as GitHub does: RS256 with the app's key,
// issued by the app's ID, not expired, at most ten minutes long.
func (f *FakeGitHub) validJWT(token string, app *fakeApp) bool {
	claims := &jwt.RegisteredClaims{}
	parsed, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodRS256 {
			return nil, fmt.Errorf("alg %v", t.Header["alg"])
		}
		return app.key, nil
	})
	if err != nil || !parsed.Valid || claims.Issuer != strconv.FormatInt(app.id, 10) || claims.ExpiresAt == nil || claims.IssuedAt == nil {
		return false
	}
	return claims.ExpiresAt.Sub(claims.IssuedAt.Time) <= 10*time.Minute
}

func (f *FakeGitHub) routes() {
	repo := func(h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			ok := r.PathValue("owner") == f.owner && r.PathValue("repo") == f.repo
			f.mu.Unlock()
			if !ok {
				writeGitHubError(w, http.StatusNotFound, "Not Found")
				return
			}
			h(w, r)
		}
	}
	const base = "/repos/{owner}/{repo}"
	f.mux.HandleFunc("GET "+base+"/commits/{sha}/pulls", repo(f.listPullsOfCommit))
	f.mux.HandleFunc("GET "+base+"/commits/{sha}", repo(f.getCommit))
	f.mux.HandleFunc("GET "+base+"/pulls/{number}", repo(f.getPull))
	f.mux.HandleFunc("GET "+base+"/pulls/{number}/reviews", repo(f.listReviews))
	f.mux.HandleFunc("POST "+base+"/statuses/{sha}", repo(f.createStatus))
	f.mux.HandleFunc("GET "+base+"/issues/{number}/comments", repo(f.listComments))
	f.mux.HandleFunc("POST "+base+"/issues/{number}/comments", repo(f.createComment))
	f.mux.HandleFunc("PATCH "+base+"/issues/comments/{id}", repo(f.editComment))
	f.mux.HandleFunc("POST "+base+"/deployments", repo(f.createDeployment))
	f.mux.HandleFunc("POST "+base+"/deployments/{id}/statuses", repo(f.createDeploymentStatus))
	f.mux.HandleFunc("GET "+base+"/commits/{sha}/statuses", repo(f.listStatuses))
	f.mux.HandleFunc("GET "+base+"/collaborators/{user}/permission", repo(f.getPermission))
	f.mux.HandleFunc("GET /orgs/{org}/teams/{slug}/members", f.listTeamMembers)
	f.mux.HandleFunc("GET /user", f.getViewer)
	f.mux.HandleFunc("GET /app", f.getApp)
	f.mux.HandleFunc("POST /app/installations/{id}/access_tokens", f.createInstallationToken)
	f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeGitHubError(w, http.StatusNotFound, "Not Found")
	})
}
