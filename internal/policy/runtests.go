package policy

import (
	"context"
	"fmt"
	"io"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// RunTests runs the Rego tests (rules named test_*) of the built-in policies and
// of dirs, as `opa test` does, and prints the report to w in its format.
// Data files (.json, .yaml) under dirs are loaded as `opa test` loads them.
// Errors of a test count as failures; err is a failure to load or compile.
func RunTests(ctx context.Context, dirs []string, w io.Writer) (passed, failed int, err error) {
	modules, err := loadModules(nil, true)
	if err != nil {
		return 0, 0, err
	}
	store := inmem.New()
	if len(dirs) > 0 {
		var extra map[string]*ast.Module
		extra, store, err = tester.LoadWithRegoVersion(dirs, nil, ast.RegoV1)
		if err != nil {
			return 0, 0, compileError(err)
		}
		builtins := builtinPackages(modules)
		var errs ast.Errors
		for name, m := range extra {
			if e := checkRepoPackage(m, builtins); e != nil {
				errs = append(errs, e)
			}
			modules[name] = m
		}
		if len(errs) > 0 {
			return 0, 0, compileError(errs)
		}
	}

	ch, err := tester.NewRunner().
		SetStore(store).
		SetDefaultRegoVersion(ast.RegoV1).
		SetCompiler(ast.NewCompiler().WithCapabilities(capabilities())).
		RaiseBuiltinErrors(true).
		CapturePrintOutput(true).
		SetTimeout(DefaultTimeout).
		Run(ctx, modules)
	if err != nil {
		return 0, 0, compileError(err)
	}

	// Count the results on their way to the reporter.
	relay := make(chan *tester.Result)
	done := make(chan error, 1)
	go func() {
		done <- tester.PrettyReporter{Output: w, FailureLine: true}.Report(relay)
	}()
	for r := range ch {
		switch {
		case r.Skip:
		case r.Pass():
			passed++
		default:
			failed++
		}
		relay <- r
	}
	close(relay)
	if err := <-done; err != nil {
		return passed, failed, fmt.Errorf("report tests: %w", err)
	}
	return passed, failed, nil
}
