package apply

// Waiting for applied objects to become healthy (kstatus).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
)

func interval(o Options) time.Duration {
	if o.WaitInterval > 0 {
		return o.WaitInterval
	}
	return time.Second
}

func healthTimeout(o Options) time.Duration {
	if o.HealthTimeout > 0 {
		return o.HealthTimeout
	}
	return 5 * time.Minute
}

// UnhealthyError is returned when applied objects did not become healthy
// within the health timeout, or failed. Its message names each object
// still unhealthy at the timeout, or each failed one.
type UnhealthyError struct {
	Cluster string
	Err     error
}

func (e *UnhealthyError) Error() string {
	return fmt.Sprintf("cluster %s: not healthy: %v", e.Cluster, e.Err)
}

func (e *UnhealthyError) Unwrap() error { return e.Err }

// IsUnhealthy reports whether err is a health failure.
func IsUnhealthy(err error) bool {
	var u *UnhealthyError
	return errors.As(err, &u)
}

// waitHealthy waits until every object of set is healthy (kstatus
// Current): polled as quickPolls says, then at opts' interval, for its
// health timeout in all. It ends early when every object is healthy or
// failed (kstatus Failed), and with opts.FailFast at the first failed one.
func (a *Applier) waitHealthy(ctx context.Context, set object.ObjMetadataSet, opts Options) error {
	every, timeout := interval(opts), healthTimeout(opts)
	start := time.Now()
	for _, q := range quickPolls {
		elapsed := time.Since(start)
		if q.every >= every || q.until >= timeout || elapsed >= q.until {
			continue
		}
		err := a.rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: q.every, Timeout: q.until - elapsed, FailFast: opts.FailFast})
		if err == nil || ctx.Err() != nil {
			return err
		}
		if time.Since(start) < q.until {
			// Ended before its time: an object failed, or a poll did.
			// The last wait tells which with its first poll; faster
			// polls before it would only repeat the answer.
			break
		}
	}
	return a.rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: every, Timeout: timeout - time.Since(start), FailFast: opts.FailFast})
}
