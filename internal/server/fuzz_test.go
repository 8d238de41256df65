package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/convoy-gitops/convoy/internal/queue"
	"github.com/convoy-gitops/convoy/internal/server"
)

// FuzzWebhookPayload feeds event names and bodies to ParseEvent and, signed,
// to the webhook: nothing panics, a parse error is a 400 and never a 500, and
// queued work is usable.
func FuzzWebhookPayload(f *testing.F) {
	for _, name := range []string{"push", "pull_request", "pull_request_review", "ping"} {
		f.Add(name, payload(f, name))
	}
	f.Add("push", []byte(`{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000","repository":{"full_name":"acme/fleet-config"}}`))
	f.Add("pull_request", []byte(`{"action":"opened","pull_request":null,"repository":{"full_name":"acme/fleet-config"}}`))
	f.Add("pull_request_review", []byte(`null`))
	f.Add("issues", []byte(`{`))
	target := server.Target{Repo: "acme/fleet-config", Branch: "main"}
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		d, err := server.ParseEvent(event, body, target)
		if err == nil {
			switch d.Status {
			case server.StatusQueued:
				if d.Item == nil || d.Item.SHA == "" || (d.Item.Kind == queue.KindPlan) == (d.Item.PR == 0) {
					t.Fatalf("queued without a usable item: %+v", d.Item)
				}
			case server.StatusIgnored, server.StatusPong:
				if d.Item != nil {
					t.Fatalf("%s with an item: %+v", d.Status, d.Item)
				}
			default:
				t.Fatalf("unknown status %q", d.Status)
			}
		}

		if event == "" || strings.ContainsAny(event, "\r\n\x00") {
			return // not a value an HTTP header can carry
		}
		e := newHook(t, 0)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, request(event, "fuzz", body, nil))
		want := map[string]int{server.StatusQueued: 202, server.StatusIgnored: 202, server.StatusPong: 200}[d.Status]
		if err != nil {
			want = http.StatusBadRequest
		}
		if len(body) > server.DefaultMaxBody {
			want = http.StatusRequestEntityTooLarge
		}
		if rec.Code != want {
			t.Fatalf("event %q: %d %s, want %d (parse error: %v)", event, rec.Code, rec.Body, want, err)
		}
		if n := e.rollouts.Len() + e.plans.Len(); (n == 1) != (d.Status == server.StatusQueued && err == nil) {
			t.Fatalf("%d items queued for a %s delivery", n, d.Status)
		}
	})
}
