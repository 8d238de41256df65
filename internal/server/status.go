package server

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/convoy-gitops/convoy/internal/analysis"
)

// Status is the agent's state as /api/status serves it (JSON field names are
// a contract) and / shows it.
type Status struct {
	Fleet    string       `json:"fleet"`
	Role     string       `json:"role"` // "leader", "standby" or "single"
	Source   SourceStatus `json:"source"`
	Revision string       `json:"revision"` // the newest revision fetched
	Waves    []WaveStatus `json:"waves"`
	Holds    []HoldStatus `json:"holds"`
	// Rollouts are the last 20 rollouts, newest first.
	Rollouts  []RolloutStatus `json:"rollouts"`
	Generated time.Time       `json:"generated"`
}

// SourceStatus is the state of the config repository's fetches.
type SourceStatus struct {
	URL         string    `json:"url"` // without credentials
	Branch      string    `json:"branch"`
	LastFetch   time.Time `json:"lastFetch"`
	LastSuccess time.Time `json:"lastSuccess"`
	Error       string    `json:"error,omitempty"` // of the last fetch
}

// WaveStatus is one wave and its clusters, in rollout order.
type WaveStatus struct {
	Name     string          `json:"name"`
	Clusters []ClusterStatus `json:"clusters"`
}

// ClusterStatus is one cluster's applied state.
type ClusterStatus struct {
	Name        string    `json:"name"`
	Environment string    `json:"environment"`
	Region      string    `json:"region"`
	Revision    string    `json:"revision"` // applied
	AppliedAt   time.Time `json:"appliedAt"`
	Health      string    `json:"health"`
	Objects     int       `json:"objects"`
	Drift       string    `json:"drift,omitempty"`
	Error       string    `json:"error,omitempty"`
	// Rules say which rules judged what the cluster runs: base (with the
	// base's revision), pinned, or bootstrap (its own: nothing ran before).
	Rules string `json:"rules,omitempty"`
	Base  string `json:"base,omitempty"`
	// Analysis is where the analyses that gate the cluster stand
	// (pending, passed, failed), with their last measurements.
	Analysis     string                 `json:"analysis,omitempty"`
	Measurements []analysis.Measurement `json:"measurements,omitempty"`
}

// HoldStatus is a change held by policy.
type HoldStatus struct {
	Revision string `json:"revision"`
	Cluster  string `json:"cluster,omitempty"` // empty: the whole rollout
	Reason   string `json:"reason"`
	// Until is when the hold ends (a window's end); zero means until it is
	// re-evaluated, and is left out of the JSON.
	Until time.Time `json:"until,omitzero"`
}

// RolloutStatus is one rollout of a revision.
type RolloutStatus struct {
	Revision string    `json:"revision"`
	Result   string    `json:"result"` // done, held, denied, failed, superseded, or running
	Reason   string    `json:"reason,omitempty"`
	PR       int       `json:"pr,omitempty"`
	Category string    `json:"category,omitempty"`
	Started  time.Time `json:"started"`
	// Finished is zero, and left out of the JSON, while the rollout runs.
	Finished time.Time `json:"finished,omitzero"`
}

func statusJSONHandler(status func() Status, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := json.MarshalIndent(status(), "", "  ")
		if err != nil {
			log.Error("status: encoding JSON failed", "error", err)
			http.Error(w, "status: encoding failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(append(body, '\n'))
	})
}

//go:embed status.html
var statusHTML string

var statusPage = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"short":  shortRevision,
	"when":   formatTime,
	"ago":    ago,
	"health": healthClass,
	"result": resultClass,
}).Parse(statusHTML))

// pageSecurity forbids the page everything but its own inline style: it has
// no script, and must not be framed.
const pageSecurity = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

func statusPageHandler(status func() Status, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Rendered whole before anything is sent, so that a template error
		// is a clean 500 rather than half a page.
		var buf bytes.Buffer
		if err := statusPage.Execute(&buf, status()); err != nil {
			log.Error("status page: rendering failed", "error", err)
			http.Error(w, "status page: rendering failed", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", pageSecurity)
		_, _ = buf.WriteTo(w)
	})
}

// shortRevision is a commit SHA cut to the length git shows.
func shortRevision(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Format("2006-01-02 15:04:05 Z07:00")
}

// ago is how long before now t was, rounded for reading ("3m ago").
func ago(now, t time.Time) string {
	if t.IsZero() || now.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + roundDuration(-d)
	case d < time.Second:
		return "just now"
	}
	return roundDuration(d) + " ago"
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// healthClass sorts a health word into the page's colours.
func healthClass(health string) string {
	switch strings.ToLower(health) {
	case "":
		return ""
	case "healthy", "current", "ready", "ok":
		return "ok"
	case "failed", "unhealthy", "error", "degraded", "timeout":
		return "bad"
	}
	return "warn"
}

// resultClass sorts a rollout result into the page's colours.
func resultClass(result string) string {
	switch result {
	case "done":
		return "ok"
	case "denied", "failed":
		return "bad"
	}
	return "warn"
}
