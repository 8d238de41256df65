// Command rusage runs a program and reports its CPU time and peak RSS:
//
//	rusage BIN ARGS… 3>usage.json
//
// BIN gets rusage's stdin, stdout and stderr, and the SIGTERM and SIGINT
// rusage receives; when it exits, rusage writes
// {"cpu_ns": user+system, "max_rss_kib": peak RSS} of BIN (its own waited-for
// children included) as JSON to file descriptor 3 and exits with BIN's code.
//
// convoy-bench starts every measured client through it because Linux
// carries the peak RSS of the process that starts a program into that
// program's ru_maxrss: started from the harness, which holds whole
// workloads in memory, every tool would report at least the harness's size.
// Started from this small program, a tool's figure is its own (or this
// program's couple of MiB at most), and the extra start costs about a
// millisecond.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rusage BIN ARGS… 3>FILE")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1], os.Args[2:]))
}

func run(bin string, args []string) int {
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// SIGTERM and SIGINT are passed on: a long-running BIN (the agent) is
	// stopped through this wrapper and still reports its usage.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "rusage:", err)
		return 127
	}
	go func() {
		for sig := range sigs {
			_ = cmd.Process.Signal(sig)
		}
	}()
	err := cmd.Wait()
	var u struct {
		CPU    time.Duration `json:"cpu_ns"`
		MaxRSS int64         `json:"max_rss_kib"`
	}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			u.CPU, u.MaxRSS = time.Duration(ru.Utime.Nano()+ru.Stime.Nano()), ru.Maxrss
		}
	}
	if report := os.NewFile(3, "usage"); report != nil {
		_ = json.NewEncoder(report).Encode(u)
		report.Close()
	}
	switch {
	case err == nil:
		return 0
	case cmd.ProcessState != nil && cmd.ProcessState.ExitCode() > 0:
		return cmd.ProcessState.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "rusage:", err)
		return 127
	}
}
