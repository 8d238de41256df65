package fleet

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser reads the five-field cron syntax plus descriptors such as
// "@daily" and "@every 10m".
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronReference is where a schedule is checked to fire at least once; fixed
// so that validation does not depend on the clock.
var cronReference = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// parseCron parses a schedule whose times are in loc.
func parseCron(spec string, loc *time.Location) (s cron.Schedule, err error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, errors.New("set the time zone in spec.timezone, not in the schedule")
	}
	// The parser is third-party code fed with user input: a panic in it is
	// a bad schedule, not a crash.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%v", r)
		}
	}()
	s, err = cronParser.Parse(spec)
	if err != nil {
		return nil, err
	}
	if ss, ok := s.(*cron.SpecSchedule); ok {
		ss.Location = loc
	}
	if s.Next(cronReference).IsZero() {
		return nil, errors.New("it never fires")
	}
	return s, nil
}

// maxOverlap bounds the search for an earlier start of a window whose
// occurrences overlap (duration longer than the interval between starts).
const maxOverlap = 1000

// ActiveAt reports whether the window is open at t, and if so until when:
// it is open from each time its schedule fires for Duration. When
// occurrences overlap, until is the end of the last one to start.
func (w *Window) ActiveAt(t time.Time) (until time.Time, active bool) {
	if w.Cron == nil || w.Duration <= 0 {
		return time.Time{}, false
	}
	// Starts s with t-Duration < s <= t are the occurrences open at t.
	// cron's Next works in whole seconds and returns times strictly after
	// its argument.
	start := w.Cron.Next(t.Add(-w.Duration))
	for i := 0; !start.IsZero() && !start.After(t) && i < maxOverlap; i++ {
		until, active = start.Add(w.Duration), true
		start = w.Cron.Next(start)
	}
	return until, active
}
