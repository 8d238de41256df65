package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// demoHandler prints the agent's log as the demo's narration: fetches,
// plans and rollout steps, one line each; warnings and errors always.
type demoHandler struct {
	w     io.Writer
	began time.Time
	mu    sync.Mutex
	attrs []slog.Attr
}

var shown = map[string]bool{
	"fetched": true, "planned": true, "rollout apply": true, "rollout healthy": true, "rollout bake": true,
	"rollout held": true, "rollout skipped": true, "rollout superseded": true, "rollout failed": true,
	"rollout rollback": true, "rollout ended": true,
}

func (h *demoHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *demoHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn && !shown[r.Message] {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "    [%5.1fs] %s", time.Since(h.began).Seconds(), r.Message)
	add := func(a slog.Attr) bool {
		switch a.Key {
		case "repo", "fleet":
			return true
		}
		if v := a.Value.String(); v != "" {
			fmt.Fprintf(&b, " %s=%s", a.Key, v)
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintln(h.w, b.String())
	return err
}

func (h *demoHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &demoHandler{w: h.w, began: h.began, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *demoHandler) WithGroup(string) slog.Handler { return h }
