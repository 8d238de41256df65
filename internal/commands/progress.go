package commands

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/convoy-gitops/convoy/internal/rollout"
)

// progress prints a rollout's steps to stderr, one line per step with the
// elapsed time. When stderr is a terminal it also keeps a live line at the
// bottom (the clusters in flight and the time since the rollout started),
// redrawn every second and erased before each step line, so a long health
// wait never looks like a hang.
type progress struct {
	w     io.Writer
	live  bool
	start time.Time

	mu       sync.Mutex
	wave     string
	inFlight map[string]string // cluster → its current step
	done     chan struct{}
	stopOnce sync.Once
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, live: isTerminal(w), start: time.Now(), inFlight: map[string]string{}, done: make(chan struct{})}
	if p.live {
		go p.tick()
	}
	return p
}

// isTerminal reports whether w is a character device (a terminal), without
// a dependency: pipes, files and test buffers are not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// Event prints one step.
func (p *progress) Event(e rollout.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	where := "wave " + e.Wave
	if e.Cluster != "" {
		where += " cluster " + e.Cluster
	}
	p.clearLine()
	fmt.Fprintf(p.w, "[%6.1fs] %s: %s %s\n", e.Elapsed.Seconds(), where, e.Step, e.Detail)
	if e.Wave != p.wave {
		p.wave, p.inFlight = e.Wave, map[string]string{}
	}
	if e.Cluster != "" {
		switch e.Step {
		case "healthy", "skipped", "failed", "rolled-back":
			delete(p.inFlight, e.Cluster)
		default:
			p.inFlight[e.Cluster] = e.Step
		}
	}
	p.drawLine()
}

// Stop erases the live line and ends its redraws.
func (p *progress) Stop() {
	p.stopOnce.Do(func() {
		close(p.done)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.clearLine()
	})
}

func (p *progress) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.mu.Lock()
			p.clearLine()
			p.drawLine()
			p.mu.Unlock()
		}
	}
}

func (p *progress) clearLine() {
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func (p *progress) drawLine() {
	if !p.live {
		return
	}
	fmt.Fprint(p.w, p.liveLine())
}

// liveLine is the text of the live line (without a newline).
func (p *progress) liveLine() string {
	var parts []string
	for c, step := range p.inFlight {
		parts = append(parts, c+" "+step)
	}
	sort.Strings(parts)
	busy := "waiting"
	if len(parts) > 0 {
		busy = strings.Join(parts, ", ")
	}
	wave := p.wave
	if wave == "" {
		wave = "-"
	}
	return fmt.Sprintf("… %s elapsed · wave %s · %s", time.Since(p.start).Round(time.Second), wave, busy)
}
