package metrics

import (
	"net/http"
	"strconv"
)

// GitHubTransport wraps next (http.DefaultTransport when nil) so that every
// GitHub API call is counted by its status code, "error" when no response
// came, and the X-RateLimit-Remaining header of each response is recorded.
// On a nil *Metrics it returns next unchanged.
func (m *Metrics) GitHubTransport(next http.RoundTripper) http.RoundTripper {
	if m == nil {
		return next
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &githubTransport{m: m, next: next}
}

type githubTransport struct {
	m    *Metrics
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *githubTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.m.githubCalls.WithLabelValues("error").Inc()
		return resp, err
	}
	t.m.githubCalls.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
	// Sent on errors (403, 429) too, where it matters most.
	if v := resp.Header.Get("X-RateLimit-Remaining"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			t.m.githubRateLimit.WithLabelValues().Set(float64(n))
		}
	}
	return resp, nil
}
