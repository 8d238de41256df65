package fleet_test

import (
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

func TestWindowActiveAt(t *testing.T) {
	f, err := fleet.Parse("fleet.yaml", []byte(doc(clusters, rollout, `  timezone: Asia/Shanghai
  windows:
  - {name: business-hours, kind: deny, schedule: "0 9 * * 1-5", duration: 9h}
  - {name: hourly, kind: deny, schedule: "0 * * * *", duration: 90m}
`)), "")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	sh := f.Location
	at := func(day, hour, min, sec int) time.Time { return time.Date(2026, 11, day, hour, min, sec, 0, sh) }
	tests := []struct {
		name       string
		window     int
		t          time.Time
		wantActive bool
		wantUntil  time.Time
	}{
		{"Wednesday morning", 0, at(25, 10, 0, 0), true, at(25, 18, 0, 0)},
		{"at the start", 0, at(25, 9, 0, 0), true, at(25, 18, 0, 0)},
		{"just before the start", 0, at(25, 8, 59, 59), false, time.Time{}},
		{"just before the end", 0, at(25, 17, 59, 59).Add(500 * time.Millisecond), true, at(25, 18, 0, 0)},
		{"at the end", 0, at(25, 18, 0, 0), false, time.Time{}},
		{"Saturday", 0, at(28, 10, 0, 0), false, time.Time{}},
		{"the same instant in UTC", 0, time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC), true, at(25, 18, 0, 0)},
		{"overlapping occurrences: the last one started", 1, at(25, 10, 15, 0), true, at(25, 11, 30, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			until, active := f.Windows[tt.window].ActiveAt(tt.t)
			if active != tt.wantActive || !until.Equal(tt.wantUntil) {
				t.Errorf("ActiveAt(%v) = %v, %v; want %v, %v", tt.t, until, active, tt.wantUntil, tt.wantActive)
			}
		})
	}
}
