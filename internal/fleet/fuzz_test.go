package fleet_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

func FuzzParse(f *testing.F) {
	seeds := []string{doc(clusters, rollout), doc(clusters)}
	for _, name := range []string{"testdata/design.yaml", "../../fixtures/fleet/fleet.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, string(data))
	}
	for _, dir := range invalidFixtures(f) {
		data, err := os.ReadFile(filepath.Join(dir, fleet.FileName))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, string(data))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := fleet.Parse("fleet.yaml", data, "")
		if err == nil {
			if fl == nil || fl.Location == nil || len(fl.Clusters) == 0 || len(fl.Rollout.Waves) == 0 {
				t.Fatalf("Parse succeeded with an incomplete fleet: %+v", fl)
			}
			for _, c := range fl.Clusters {
				if fl.WaveIndex(c.Wave) < 0 {
					t.Fatalf("cluster %q is in wave %q, which the rollout does not have", c.Name, c.Wave)
				}
			}
			return
		}
		var ve *fleet.ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) == 0 {
			t.Fatalf("error %v (%T) is not a *ValidationError with problems", err, err)
		}
		lastLine := strings.Count(string(data), "\n") + 2
		for _, p := range ve.Problems {
			if p.Line < 1 || p.Line > lastLine {
				t.Errorf("problem %q: line %d outside 1..%d", p, p.Line, lastLine)
			}
			if strings.ContainsAny(p.String(), "\r\n") {
				t.Errorf("problem %q spans more than one line", p)
			}
		}
	})
}
