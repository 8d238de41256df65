package change

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
	"k8s.io/apimachinery/pkg/util/wait"
)

// call is one GitHub request; it returns go-github's response and error.
type call func(ctx context.Context) (*github.Response, error)

// pageFunc lists one page (opts.Page, 100 a page) and keeps its items; it
// returns go-github's response and error. stop ends the paging early.
type pageFunc func(ctx context.Context, opts github.ListOptions) (resp *github.Response, stop bool, err error)

// maxPages bounds every pagination, against a server that never ends one.
const maxPages = 1000

// paginate calls list for each page GitHub's Link header names, each page
// tried as do tries a request, until the last page or stop.
func (g *GitHub) paginate(ctx context.Context, op string, list pageFunc) error {
	opts := github.ListOptions{PerPage: 100}
	for range maxPages {
		next, stop := 0, false
		err := g.do(ctx, op, func(ctx context.Context) (*github.Response, error) {
			resp, s, err := list(ctx, opts)
			if resp != nil {
				next = resp.NextPage
			}
			stop = s
			return resp, err
		})
		if err != nil {
			return err
		}
		if stop || next == 0 || next == opts.Page {
			return nil
		}
		opts.Page = next
	}
	return nil
}

// outcome is what one failed request says about trying again.
type outcome struct {
	retry       bool
	rateLimited bool
	until       time.Time // when GitHub allows the next request; zero: back off
	// secondary is a secondary rate limit that named no time: wait at
	// least g.secondary, doubled after each.
	secondary bool
}

// do runs c until it succeeds, fails for good, or has been tried g.tries
// times. It waits between tries with exponential backoff; on a rate limit,
// until the time GitHub names (Retry-After, X-RateLimit-Reset) when that
// is at most g.maxRateWait away, or, when it names none, a minute and
// then twice as long each time, as GitHub's docs ask. Every wait on a rate
// limit is logged. Every failure is an *Unavailable naming op.
func (g *GitHub) do(ctx context.Context, op string, c call) error {
	var lastErr error
	var lastStatus int
	backoff := wait.Backoff{Duration: g.backoff, Factor: 2, Steps: math.MaxInt32, Cap: g.maxBackoff}
	secondary := wait.Backoff{Duration: g.secondary, Factor: 2, Steps: math.MaxInt32, Cap: g.secondary << 6}
	for try := 1; ; try++ {
		resp, err := c(ctx)
		if err == nil {
			return nil
		}
		if resp != nil && resp.Response != nil {
			lastStatus = resp.StatusCode
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return g.unavailable(op, try, lastStatus, false, ctxErr, describeCtx(ctxErr, lastErr))
		}
		lastErr = err
		now := g.clock.Now()
		o := classify(err, now)
		if !o.retry {
			return g.unavailable(op, try, lastStatus, o.rateLimited, err, describe(err))
		}
		pause := backoff.Step()
		switch {
		case o.rateLimited && !o.until.IsZero():
			pause = max(o.until.Sub(now), 0)
			if pause > g.maxRateWait {
				reason := fmt.Sprintf("rate limited until %s, more than %s away", o.until.UTC().Format(time.RFC3339), g.maxRateWait)
				u := g.unavailable(op, try, lastStatus, true, err, reason)
				u.RetryAt = o.until
				return u
			}
		case o.secondary:
			pause = secondary.Step()
		}
		if try >= g.tries {
			u := g.unavailable(op, try, lastStatus, o.rateLimited, err, describe(err)+triesSuffix(try))
			if o.rateLimited {
				u.RetryAt = now.Add(pause)
			}
			return u
		}
		if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) < pause {
			reason := describe(err) + triesSuffix(try) + "; the next try would pass the deadline"
			return g.unavailable(op, try, lastStatus, o.rateLimited, err, reason)
		}
		if o.rateLimited {
			g.log.Warn("GitHub rate limit: waiting before the next try", "op", op, "wait", pause.String(),
				"until", now.Add(pause).UTC().Format(time.RFC3339), "answer", describe(err))
		}
		if err := g.clock.Sleep(ctx, pause); err != nil {
			return g.unavailable(op, try, lastStatus, o.rateLimited, err, describeCtx(err, lastErr))
		}
	}
}

// unavailable builds the error of a failed request; the token never shows.
func (g *GitHub) unavailable(op string, tries, status int, rateLimited bool, err error, reason string) *Unavailable {
	if g.token != "" {
		reason = strings.ReplaceAll(reason, g.token, "[redacted]")
		op = strings.ReplaceAll(op, g.token, "[redacted]")
	}
	return &Unavailable{Op: op, Reason: reason, Status: status, Tries: tries, RateLimited: rateLimited, Err: err}
}

// classify says whether a failed request is worth another try, and when.
// A rate limit that names no time is a secondary one: GitHub answers those
// with 403 or 429, at times without Retry-After or X-RateLimit-* headers.
func classify(err error, now time.Time) outcome {
	var rateErr *github.RateLimitError
	var abuseErr *github.AbuseRateLimitError
	var respErr *github.ErrorResponse
	var acceptedErr *github.AcceptedError
	switch {
	case errors.Is(err, context.Canceled):
		return outcome{}
	case errors.Is(err, context.DeadlineExceeded):
		// The caller's context is checked before classify, so this is the
		// HTTP client's own timeout: a slow GitHub, worth another try.
		return outcome{retry: true}
	case errors.As(err, &rateErr):
		o := outcome{retry: true, rateLimited: true, until: rateErr.Rate.Reset.Time}
		if until, ok := retryAt(rateErr.Response, now); ok {
			o.until = until
		}
		if o.until.IsZero() {
			o.secondary = true
		}
		return o
	case errors.As(err, &abuseErr):
		o := outcome{retry: true, rateLimited: true}
		if abuseErr.RetryAfter != nil {
			o.until = now.Add(*abuseErr.RetryAfter)
		}
		if until, ok := retryAt(abuseErr.Response, now); ok {
			o.until = until
		}
		o.secondary = o.until.IsZero()
		return o
	case errors.As(err, &respErr):
		status := 0
		if respErr.Response != nil {
			status = respErr.Response.StatusCode
		}
		if status == http.StatusTooManyRequests || status == http.StatusForbidden {
			if until, ok := retryAt(respErr.Response, now); ok {
				return outcome{retry: true, rateLimited: true, until: until}
			}
		}
		switch {
		case status == http.StatusTooManyRequests,
			status == http.StatusForbidden && strings.Contains(strings.ToLower(respErr.Message), "rate limit"):
			return outcome{retry: true, rateLimited: true, secondary: true}
		case status >= 500:
			return outcome{retry: true}
		}
		return outcome{}
	case errors.As(err, &acceptedErr):
		return outcome{}
	}
	// Network errors and bodies cut short.
	return outcome{retry: true}
}

// retryAt reads when a rate-limited response allows the next request:
// Retry-After (seconds or an HTTP date), else X-RateLimit-Reset (unix seconds)
// when X-RateLimit-Remaining is 0.
func retryAt(resp *http.Response, now time.Time) (time.Time, bool) {
	if resp == nil {
		return time.Time{}, false
	}
	h := resp.Header
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
			return now.Add(time.Duration(secs) * time.Second), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return t, true
		}
	}
	if strings.TrimSpace(h.Get("X-RateLimit-Remaining")) == "0" {
		if secs, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64); err == nil && secs > 0 {
			return time.Unix(secs, 0), true
		}
	}
	return time.Time{}, false
}

// describe says what a failed request answered, without the request URL.
func describe(err error) string {
	var rateErr *github.RateLimitError
	var abuseErr *github.AbuseRateLimitError
	var respErr *github.ErrorResponse
	switch {
	case errors.As(err, &rateErr):
		return "rate limited: " + statusText(rateErr.Response, rateErr.Message)
	case errors.As(err, &abuseErr):
		return "secondary rate limit: " + statusText(abuseErr.Response, abuseErr.Message)
	case errors.As(err, &respErr):
		return statusText(respErr.Response, respErr.Message)
	}
	return err.Error()
}

// describeCtx says that the context ended, and what the try before it answered.
func describeCtx(ctxErr, last error) string {
	if last == nil {
		return ctxErr.Error()
	}
	return ctxErr.Error() + " (last answer: " + describe(last) + ")"
}

// statusText renders "502 Bad Gateway", with GitHub's message when it adds something.
func statusText(resp *http.Response, message string) string {
	if resp == nil {
		return message
	}
	s := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if m := strings.TrimSpace(message); m != "" && !strings.EqualFold(m, http.StatusText(resp.StatusCode)) {
		s += ": " + m
	}
	return s
}

func triesSuffix(tries int) string {
	if tries <= 1 {
		return ""
	}
	return fmt.Sprintf(" after %d tries", tries)
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
