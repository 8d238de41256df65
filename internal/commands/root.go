// Package commands is convoy's command line: one file per subcommand, each a
// thin layer over the domain packages under internal/.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command, documented in the README.
const (
	ExitOK    = 0
	ExitDeny  = 1 // denied, failed, or test failures
	ExitError = 2 // bad input, unreachable dependencies, not built yet
	ExitHold  = 3 // held (by policy, an undecided analysis, a suspension); retry later
)

// exitError carries a process exit code through cobra. Its message, when set,
// is printed to stderr one line per problem.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// withCode wraps err so that Execute exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return &exitError{code: code}
	}
	return &exitError{code: code, msg: err.Error()}
}

// newRoot builds the command tree.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "convoy",
		Short: "GitOps for fleets of Kubernetes clusters under change management",
		Long: `convoy renders each cluster of a fleet with kustomize, checks the change
against Rego policies (approvals from pull-request reviews, business hours,
quota), and applies it wave by wave with server-side apply.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newRenderCmd(),
		newPlanCmd(),
		newPolicyCmd(),
		newApplyCmd(),
		newStatusCmd(),
		newRunCmd(),
		newVersionCmd(),
	)
	return root
}

// Execute runs convoy with args and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	return ExecuteContext(context.Background(), args, stdout, stderr)
}

// ExecuteContext is Execute with a context whose cancellation stops the
// command (between clusters for a rollout: never half-way through one).
func ExecuteContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			printLines(stderr, ee.msg)
		}
		return ee.code
	}
	// Flag and argument errors from cobra are usage errors.
	printLines(stderr, err.Error())
	return ExitError
}

// printLines writes msg to w as one "convoy: " line per problem.
func printLines(w io.Writer, msg string) {
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		fmt.Fprintf(w, "convoy: %s\n", line)
	}
}
