package fleet_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

// invalidFixtures lists fixtures/invalid/fleet-*: config repositories with
// one fleet.yaml problem each, and the lines their error must contain.
func invalidFixtures(t testing.TB) []string {
	dirs, err := filepath.Glob("../../fixtures/invalid/fleet-*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 8 {
		t.Fatalf("found %d fleet fixtures in fixtures/invalid, want at least 8", len(dirs))
	}
	return dirs
}

func TestInvalidFixtures(t *testing.T) {
	for _, dir := range invalidFixtures(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			expect, err := os.ReadFile(filepath.Join(dir, "expect.txt"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = fleet.Load(dir)
			got := problemLines(t, err)
			// One problem each, so the fixture tests what its name says.
			if len(got) != 1 {
				t.Errorf("got %d problems, want exactly 1:\n%s", len(got), strings.Join(got, "\n"))
			}
			for _, want := range strings.Split(strings.TrimSpace(string(expect)), "\n") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}
