package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/open-policy-agent/opa/v1/util"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/convoy-gitops/convoy/internal/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Evaluate or test Rego policies",
	}
	cmd.AddCommand(newPolicyEvalCmd(), newPolicyTestCmd())
	return cmd
}

func newPolicyEvalCmd() *cobra.Command {
	var (
		inputFile string
		dirs      []string
		dataFile  string
		output    string
	)
	cmd := &cobra.Command{
		Use:   "eval --input FILE [--policies DIR]... [--data FILE] [-o text|json]",
		Short: "Evaluate the built-in and given policies on one input document",
		Long: `Evaluates one policy input document (the input convoy plan builds per cluster:
fleet, cluster, change, now, windows, objects, diff) with the built-in
policies and those of each --policies DIR. --data is a JSON or YAML object
exposed as data.convoy.config, like fleet.yaml's spec.policy.data.

JSON output: {"verdict": "allow|hold|deny", "deny": [...], "hold": [...],
"warn": [...]}, each message an object {"package", "msg", "location"}.

Exit 0 allow, 1 deny (a policy that does not compile is a deny naming its
file and line), 3 hold, 2 bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return withCode(ExitError, fmt.Errorf("-o %s: want text or json", output))
			}
			data, err := readPolicyData(dataFile)
			if err != nil {
				return withCode(ExitError, err)
			}
			// The policies compile while the input is read and parsed.
			type compiled struct {
				engine *policy.Engine
				err    error
			}
			compiling := make(chan compiled, 1)
			go func() {
				e, err := policy.New(policy.Options{Dirs: dirs, Data: data})
				compiling <- compiled{e, err}
			}()
			raw, err := os.ReadFile(inputFile)
			if err != nil {
				return withCode(ExitError, fmt.Errorf("read input: %w", err))
			}
			input, err := policy.ParseInput(inputFile, raw)
			if err != nil {
				return withCode(ExitError, err)
			}
			var d policy.Decision
			c := <-compiling
			engine, err := c.engine, c.err
			var ce *policy.CompileError
			switch {
			case errors.As(err, &ce):
				d = ce.Decision() // fail closed: a deny naming each file and line
				fmt.Fprintf(cmd.ErrOrStderr(), "convoy: %s\n", strings.ReplaceAll(ce.Error(), "\n", "\nconvoy: "))
			case err != nil:
				return withCode(ExitError, err)
			default:
				d = engine.EvaluateValue(cmd.Context(), input)
			}
			if err := writeDecision(cmd.OutOrStdout(), d, output); err != nil {
				return withCode(ExitError, err)
			}
			switch d.Verdict {
			case policy.Allow:
				return nil
			case policy.Hold:
				return withCode(ExitHold, nil)
			default:
				return withCode(ExitDeny, nil)
			}
		},
	}
	cmd.Flags().StringVar(&inputFile, "input", "", "policy input document (JSON)")
	cmd.Flags().StringArrayVar(&dirs, "policies", nil, "folder of extra .rego policies (repeatable)")
	cmd.Flags().StringVar(&dataFile, "data", "", "JSON or YAML object exposed as data.convoy.config")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

// readPolicyData reads the --data file; no file is no data.
func readPolicyData(file string) (map[string]any, error) {
	if file == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read data: %w", err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid JSON or YAML: %w", file, err)
	}
	var data map[string]any
	if err := util.UnmarshalJSON(js, &data); err != nil || data == nil {
		return nil, fmt.Errorf("%s: want an object (data.convoy.config)", file)
	}
	return data, nil
}

// writeDecision prints d as text or JSON.
func writeDecision(w io.Writer, d policy.Decision, output string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	var werr error
	printf := func(format string, args ...any) {
		if _, err := fmt.Fprintf(w, format, args...); err != nil && werr == nil {
			werr = err
		}
	}
	printf("verdict: %s\n", d.Verdict)
	for _, group := range []struct {
		name string
		msgs []policy.Message
	}{{"deny", d.Deny}, {"hold", d.Hold}, {"warn", d.Warn}} {
		for _, m := range group.msgs {
			printf("%s: %s: %s", group.name, m.Package, m.Msg)
			if m.Location != "" {
				printf(" (%s)", m.Location)
			}
			printf("\n")
		}
	}
	return werr
}

func newPolicyTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test [DIR]...",
		Short: "Run the Rego tests of the built-in policies and of each DIR",
		Long: `Runs the test_* rules of the built-in policies and of the .rego files under
each DIR, like "opa test", and prints the report in its format.

Exit 0 when every test passes, 1 when one fails, 2 when a policy does not load.`,
		RunE: func(cmd *cobra.Command, dirs []string) error {
			passed, failed, err := policy.RunTests(cmd.Context(), dirs, cmd.OutOrStdout())
			if err != nil {
				return withCode(ExitError, err)
			}
			if failed > 0 {
				return withCode(ExitDeny, fmt.Errorf("%d of %d policy tests failed", failed, passed+failed))
			}
			return nil
		},
	}
}
