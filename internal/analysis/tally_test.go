package analysis_test

import (
	"strings"
	"testing"

	"github.com/convoy-gitops/convoy/internal/analysis"
	"github.com/convoy-gitops/convoy/internal/fleet"
)

// run turns "pfi" into measurements: pass, fail, inconclusive.
func run(s string) []analysis.Measurement {
	var ms []analysis.Measurement
	for _, c := range s {
		v := map[rune]string{'p': analysis.Pass, 'f': analysis.Fail, 'i': analysis.Inconclusive}[c]
		ms = append(ms, analysis.Measurement{Verdict: v})
	}
	return ms
}

func TestTally(t *testing.T) {
	tests := []struct {
		name         string
		count, limit int
		consecutive  int
		inconclusive string
		runs         map[string]string // measurements → verdict
	}{
		{"one success is enough", 0, 0, 1, fleet.InconclusiveHold, map[string]string{
			"": analysis.Running, "p": analysis.Pass, "f": analysis.Fail, "pf": analysis.Fail, "i": analysis.Inconclusive, "ip": analysis.Pass,
		}},
		{"three in a row, one failure tolerated", 0, 1, 3, fleet.InconclusiveHold, map[string]string{
			"pp": analysis.Running, "ppp": analysis.Pass, "pfpp": analysis.Running, "pfppp": analysis.Pass, "ff": analysis.Fail, "pipp": analysis.Running,
		}},
		{"a count of four", 4, 0, 1, fleet.InconclusiveHold, map[string]string{
			"ppp": analysis.Running, "pppp": analysis.Pass, "pppf": analysis.Fail,
		}},
		{"inconclusive counts as failed", 0, 0, 1, fleet.InconclusiveFail, map[string]string{
			"i": analysis.Fail, "p": analysis.Pass,
		}},
	}
	for _, tt := range tests {
		a := &fleet.Analysis{Count: tt.count, FailureLimit: tt.limit, ConsecutiveSuccesses: tt.consecutive, Inconclusive: tt.inconclusive}
		for ms, want := range tt.runs {
			if got := analysis.Tally(a, run(ms)); got != want {
				t.Errorf("%s: %q = %s, want %s", tt.name, strings.ToUpper(ms), got, want)
			}
		}
	}
}
