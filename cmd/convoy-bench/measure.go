package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/convoy-gitops/convoy/internal/testenv"
)

// Sample is one measured run of one tool.
type Sample struct {
	Wall     time.Duration    `json:"wall_ns"`
	CPU      time.Duration    `json:"cpu_ns"`      // user + system of the client processes
	MaxRSS   int64            `json:"max_rss_kib"` // the largest client process's peak RSS
	Requests testenv.Requests `json:"requests,omitempty"`
	Note     string           `json:"note,omitempty"`
	// Phases are times a client reported of its own steps (the drift
	// check: plan, reconcile).
	Phases map[string]time.Duration `json:"phases_ns,omitempty"`
}

// step is one client process; a pipeline is several steps whose stdout
// feeds the next one's stdin.
type step struct {
	bin  string
	args []string
	dir  string
	env  []string // added to this process's environment
}

func (s step) String() string { return s.bin + " " + strings.Join(s.args, " ") }

// runSteps runs each pipeline in turn (the steps of a pipeline
// concurrently, connected by pipes) and returns the wall time from the first
// start to the last exit, the summed CPU time and the largest peak RSS of
// every process. stdin feeds the first process of each pipeline, when set.
func runSteps(ctx context.Context, stdin []byte, pipelines ...[]step) (Sample, []byte, error) {
	var s Sample
	var lastOut []byte
	start := time.Now()
	for _, pl := range pipelines {
		cmds := make([]*exec.Cmd, len(pl))
		var stderrs []*bytes.Buffer
		usages := make([]*os.File, len(pl))
		for i, st := range pl {
			// Through the rusage wrapper: a child started by this process
			// would inherit its peak RSS in ru_maxrss.
			cmds[i] = exec.CommandContext(ctx, rusageExe, append([]string{st.bin}, st.args...)...)
			cmds[i].Dir = st.dir
			if len(st.env) > 0 {
				cmds[i].Env = append(os.Environ(), st.env...)
			}
			var e bytes.Buffer
			cmds[i].Stderr = &e
			stderrs = append(stderrs, &e)
			r, w, err := os.Pipe()
			if err != nil {
				return s, nil, err
			}
			defer r.Close()
			usages[i] = r
			cmds[i].ExtraFiles = []*os.File{w}
			defer w.Close()
		}
		if stdin != nil {
			cmds[0].Stdin = bytes.NewReader(stdin)
		}
		var parentEnds []*os.File
		for i := 0; i+1 < len(cmds); i++ {
			r, w, err := os.Pipe()
			if err != nil {
				return s, nil, err
			}
			cmds[i].Stdout, cmds[i+1].Stdin = w, r
			parentEnds = append(parentEnds, r, w)
		}
		var out bytes.Buffer
		cmds[len(cmds)-1].Stdout = &out
		for i, c := range cmds {
			if err := c.Start(); err != nil {
				closeAll(parentEnds)
				return s, nil, fmt.Errorf("start %s: %w", pl[i], err)
			}
		}
		closeAll(parentEnds) // the children hold their own ends
		for _, c := range cmds {
			c.ExtraFiles[0].Close()
		}
		var errs []string
		for i, c := range cmds {
			err := c.Wait()
			logStep(pl[i], stderrs[i].String())
			var u usage
			if derr := json.NewDecoder(usages[i]).Decode(&u); derr != nil && err == nil {
				err = fmt.Errorf("no resource usage from the rusage wrapper: %w", derr)
			}
			s.CPU += u.CPU
			s.MaxRSS = max(s.MaxRSS, u.MaxRSS)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v: %s", pl[i], err, tail(stderrs[i].String())))
			}
		}
		if len(errs) > 0 {
			return s, out.Bytes(), fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		lastOut = out.Bytes()
	}
	s.Wall = time.Since(start)
	return s, lastOut, nil
}

// rusageExe is the rusage wrapper (cmd/convoy-bench/rusage).
var rusageExe string

// usage is what the rusage wrapper reports of the process it ran.
type usage struct {
	CPU    time.Duration `json:"cpu_ns"`
	MaxRSS int64         `json:"max_rss_kib"`
}

// stepLog, when set (-keep), receives every client process's stderr.
var stepLog *os.File

func logStep(s step, stderr string) {
	if stepLog != nil {
		fmt.Fprintf(stepLog, "=== %s %s\n%s\n", time.Now().Format("15:04:05.000"), s, stderr)
	}
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 1500 {
		s = "…" + s[len(s)-1500:]
	}
	return s
}

// measured runs fn between two reads of the planes' request counts and
// stores the difference in the sample fn returns.
func measured(ctx context.Context, p *planes, fn func() (Sample, error)) (Sample, error) {
	var before testenv.Requests
	if p != nil {
		var err error
		if before, err = p.requests(ctx); err != nil {
			return Sample{}, err
		}
	}
	s, err := fn()
	if err != nil || p == nil {
		return s, err
	}
	after, err := p.requests(ctx)
	if err != nil {
		return s, err
	}
	s.Requests = after.Sub(before)
	return s, nil
}
