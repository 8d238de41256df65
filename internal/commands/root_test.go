package commands

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// run executes convoy with args and returns its exit code and outputs.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Execute(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	for _, want := range []string{"convoy ", "commit ", runtime.Version()} {
		if !strings.Contains(out, want) {
			t.Errorf("version output %q lacks %q", out, want)
		}
	}
}

// TestHelpListsCommands: the documented command line is stable.
func TestHelpListsCommands(t *testing.T) {
	code, out, _ := run(t, "--help")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	for _, cmd := range []string{"render", "plan", "policy", "apply", "status", "run", "version"} {
		if !strings.Contains(out, "\n  "+cmd+" ") {
			t.Errorf("help does not list %q:\n%s", cmd, out)
		}
	}
}

func TestUnknownFlagIsExit2(t *testing.T) {
	code, out, errOut := run(t, "version", "--no-such-flag")
	if code != ExitError || out != "" || !strings.Contains(errOut, "unknown flag: --no-such-flag") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, the flag named", code, out, errOut)
	}
}
