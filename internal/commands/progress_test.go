package commands

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/rollout"
)

func TestProgressPlainOutputHasNoLiveLine(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf)
	p.Event(rollout.Event{Wave: "canary", Cluster: "staging", Step: "apply", Detail: "12 objects", Elapsed: 1500 * time.Millisecond})
	p.Stop()
	want := "[   1.5s] wave canary cluster staging: apply 12 objects\n"
	if got := buf.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestProgressLiveLineTracksClustersInFlight(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf)
	p.live = true // as on a terminal
	p.Event(rollout.Event{Wave: "secondary", Cluster: "prod-secondary", Step: "apply"})
	p.Event(rollout.Event{Wave: "secondary", Cluster: "prod-edge", Step: "apply"})
	p.Event(rollout.Event{Wave: "secondary", Cluster: "prod-edge", Step: "healthy"})
	line := p.liveLine()
	if !strings.Contains(line, "wave secondary · prod-secondary apply") || strings.Contains(line, "prod-edge") {
		t.Errorf("live line = %q, want only prod-secondary in flight", line)
	}
	p.Stop()
	out := buf.String()
	if !strings.HasSuffix(out, "\r\033[K") {
		t.Errorf("output does not end by erasing the live line: %q", out)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("%d step lines, want 3: %q", n, out)
	}
}
