package server_test

import (
	"encoding/json"
	"html"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/server"
)

func sampleStatus(t *testing.T) server.Status {
	t.Helper()
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, sh)
	const (
		rev1 = "9f3c2a1b7d4e5f60718293a4b5c6d7e8f9012345"
		rev2 = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
	)
	return server.Status{
		Fleet: "intelligent-environment",
		Role:  "leader",
		Source: server.SourceStatus{
			URL: "https://git.example.com/acme/fleet-config.git", Branch: "main",
			LastFetch: now.Add(-30 * time.Second), LastSuccess: now.Add(-30 * time.Second),
		},
		Revision: rev2,
		Waves: []server.WaveStatus{
			{Name: "canary", Clusters: []server.ClusterStatus{
				{Name: "staging", Environment: "staging", Region: "cn-north", Revision: rev2,
					AppliedAt: now.Add(-5 * time.Minute), Health: "Healthy", Objects: 12},
			}},
			{Name: "primary", Clusters: []server.ClusterStatus{
				{Name: "prod-primary", Environment: "production", Region: "cn-east", Revision: rev1,
					AppliedAt: now.Add(-26 * time.Hour), Health: "Healthy", Objects: 40, Drift: "2 objects drifted"},
				{Name: "prod-edge", Environment: "production", Region: "cn-south", Revision: rev1,
					AppliedAt: now.Add(-26 * time.Hour), Health: "Failed", Objects: 7,
					Error: "apps/v1/Deployment/edge/gateway not Available after 5m0s"},
			}},
		},
		Holds: []server.HoldStatus{
			{Revision: rev2, Cluster: "prod-primary", Reason: "major change during business hours",
				Until: time.Date(2026, 11, 25, 18, 0, 0, 0, sh)},
			{Revision: rev2, Reason: "approvals pending: 1 of 2"},
		},
		Rollouts: []server.RolloutStatus{
			{Revision: rev2, Result: "held", Reason: "<script>alert('x')</script> in a PR title",
				PR: 42, Category: "major", Started: now.Add(-6 * time.Minute)},
			{Revision: rev1, Result: "done", PR: 41, Category: "normal",
				Started: now.Add(-27 * time.Hour), Finished: now.Add(-26 * time.Hour)},
		},
		Generated: now,
	}
}

func TestStatusJSONRoundTrip(t *testing.T) {
	want := sampleStatus(t)
	_, base := serve(t, server.Options{Status: func() server.Status { return want }})
	code, h, body := call(t, client(t), http.MethodGet, base+"/api/status", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/status = %d %s", code, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var got server.Status
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/api/status is not JSON: %v\n%s", err, body)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/api/status round trip (-want +got):\n%s", diff)
	}
}

// keys are the sorted keys of a JSON object.
func keys(t *testing.T, v any) []string {
	t.Helper()
	obj, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not a JSON object", v)
	}
	var out []string
	for k := range obj {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestStatusJSONFieldNames(t *testing.T) {
	data, err := json.Marshal(sampleStatus(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	first := func(v any) any { return v.([]any)[0] }
	second := func(v any) any { return v.([]any)[1] }
	wave := first(doc["waves"])
	for _, tc := range []struct {
		name string
		obj  any
		want []string
	}{
		{"status", doc, []string{"fleet", "generated", "holds", "revision", "role", "rollouts", "source", "waves"}},
		{"source without error", doc["source"], []string{"branch", "lastFetch", "lastSuccess", "url"}},
		{"wave", wave, []string{"clusters", "name"}},
		{"cluster", first(wave.(map[string]any)["clusters"]),
			[]string{"appliedAt", "environment", "health", "name", "objects", "region", "revision"}},
		{"cluster with drift and error", second(second(doc["waves"]).(map[string]any)["clusters"]),
			[]string{"appliedAt", "environment", "error", "health", "name", "objects", "region", "revision"}},
		{"hold with an end", first(doc["holds"]), []string{"cluster", "reason", "revision", "until"}},
		{"hold until re-evaluated", second(doc["holds"]), []string{"reason", "revision"}},
		{"running rollout", first(doc["rollouts"]), []string{"category", "pr", "reason", "result", "revision", "started"}},
		{"finished rollout", second(doc["rollouts"]), []string{"category", "finished", "pr", "result", "revision", "started"}},
	} {
		if diff := cmp.Diff(tc.want, keys(t, tc.obj)); diff != "" {
			t.Errorf("%s: JSON keys (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestStatusPage(t *testing.T) {
	_, base := serve(t, server.Options{Status: func() server.Status { return sampleStatus(t) }})
	code, h, page := call(t, client(t), http.MethodGet, base+"/", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET / = %d %s", code, page)
	}
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q, want text/html; charset=utf-8", ct)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q, want default-src 'none'", csp)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="10">`,
		"intelligent-environment", "<strong>leader</strong>",
		"https://git.example.com/acme/fleet-config.git",
		"<h3>canary</h3>", "<h3>primary</h3>",
		"<td>staging</td>", "<td>prod-primary</td>", "<td>prod-edge</td>",
		"<td>cn-east</td>", "<td>production</td>",
		">0d1a26e<", ">9f3c2a1<", // short revisions
		"2026-11-25 09:55:00 +08:00", // staging applied at
		"<td>40</td>", "2 objects drifted",
		"apps/v1/Deployment/edge/gateway not Available after 5m0s",
		"held until 2026-11-25 18:00:00 +08:00 — major change during business hours",
		"held — approvals pending: 1 of 2 (re-evaluated on the next event)",
		"#42 major", "#41 normal",
	} {
		// Text as a browser shows it: html/template writes "+" as "&#43;".
		if !strings.Contains(html.UnescapeString(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The reason's markup is text on the page, not an element.
	if escaped := "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; in a PR title"; !strings.Contains(page, escaped) {
		t.Errorf("page lacks the escaped reason %q", escaped)
	}
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Errorf("page contains a script element:\n%s", page)
	}
	// Whatever the staging wave's position, its rows come before the
	// primary wave's: waves keep their rollout order.
	if strings.Index(page, "<td>staging</td>") > strings.Index(page, "<td>prod-primary</td>") {
		t.Error("waves out of order on the page")
	}
}

func TestStatusPageEmpty(t *testing.T) {
	_, base := serve(t, server.Options{Status: func() server.Status { return server.Status{Fleet: "f", Role: "standby"} }})
	code, _, page := call(t, client(t), http.MethodGet, base+"/", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET / = %d %s", code, page)
	}
	for _, want := range []string{"no waves", "no holds", "no rollouts yet", "<strong>standby</strong>"} {
		if !strings.Contains(page, want) {
			t.Errorf("empty page lacks %q", want)
		}
	}
}
