package change

import (
	"errors"
	"time"
)

// ErrUnavailable is matched (errors.Is) by every *Unavailable: GitHub could
// not be read or written. A policy holds such a change and never allows it.
var ErrUnavailable = errors.New("github unavailable")

// Unavailable is the error for a GitHub request that failed, after retries
// where a retry could help.
type Unavailable struct {
	Op          string // what was asked: "list reviews of acme/fleet-config#42"
	Reason      string // what went wrong: "502 Bad Gateway after 4 tries"; never holds the token
	Status      int    // the last HTTP status, 0 when no response came
	Tries       int    // requests made, or tried
	RateLimited bool   // GitHub's rate limit stopped the request
	// RetryAt, for a rate limit, is when GitHub allows the next request;
	// zero when unknown.
	RetryAt time.Time
	Err     error // the last error, for errors.As (go-github's error types, context errors)
}

func (e *Unavailable) Error() string { return e.Op + ": " + e.Reason }

// Unwrap returns the last error.
func (e *Unavailable) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *Unavailable) Is(target error) bool { return target == ErrUnavailable }
