package source

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Classes of fetch failures, for callers that branch: test with errors.Is.
var (
	// ErrUnreachable is a failure worth retrying with backoff: the network,
	// a timeout, or a server answering 5xx or 429.
	ErrUnreachable = errors.New("git remote unreachable")
	// ErrAuth is a remote refusing the credentials (or their absence).
	ErrAuth = errors.New("git authentication failed")
	// ErrNotFound is a repository, branch or revision that does not exist.
	ErrNotFound = errors.New("not found")
)

// fetchError is what Fetch returns for a failure talking to the remote. It
// keeps only a scrubbed message of the cause, never the cause itself, whose
// text may carry credentials; the classes it unwraps to are what callers
// branch on.
type fetchError struct {
	url     string // redacted
	msg     string // scrubbed
	classes []error
}

func (e *fetchError) Error() string   { return "fetch " + e.url + ": " + e.msg }
func (e *fetchError) Unwrap() []error { return e.classes }

// failure turns err, the cause of a failed fetch step, into a fetchError:
// the message is scrubbed of every credential the Source knows, and the
// classes come from the cause and from ctx.
func (s *Source) failure(ctx context.Context, err error) error {
	var verr *VerificationError
	if errors.As(err, &verr) {
		return &fetchError{url: s.redactedURL, msg: verr.Error(), classes: []error{verr}}
	}
	return &fetchError{url: s.redactedURL, msg: s.scrub(err.Error()), classes: classify(ctx, err)}
}

// classify maps a go-git, network or context error to this package's classes
// (and the context's error, so errors.Is(err, context.Canceled) holds).
func classify(ctx context.Context, err error) []error {
	var classes []error
	add := func(c error) {
		for _, have := range classes {
			if have == c {
				return
			}
		}
		classes = append(classes, c)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = errors.Join(err, ctxErr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		add(ErrUnreachable)
		add(context.DeadlineExceeded)
	}
	if errors.Is(err, context.Canceled) {
		add(context.Canceled)
	}
	for _, c := range []error{ErrUnreachable, ErrAuth, ErrNotFound} {
		if errors.Is(err, c) {
			add(c)
		}
	}
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		strings.Contains(err.Error(), "unable to authenticate"): // ssh handshake
		add(ErrAuth)
	case errors.Is(err, transport.ErrRepositoryNotFound),
		errors.Is(err, transport.ErrEmptyRemoteRepository),
		errors.Is(err, plumbing.ErrReferenceNotFound),
		errors.Is(err, plumbing.ErrObjectNotFound):
		add(ErrNotFound)
	}
	if code := httpStatus(err); code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout {
		add(ErrUnreachable)
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) {
		if !errors.Is(err, context.Canceled) {
			add(ErrUnreachable)
		}
	}
	return classes
}

// httpStatus digs the status code out of go-git's unexpected-status error,
// which does not unwrap.
func httpStatus(err error) int {
	var unexpected *plumbing.UnexpectedError
	if errors.As(err, &unexpected) {
		err = unexpected.Err
	}
	var herr *githttp.Err
	if errors.As(err, &herr) && herr.Response != nil {
		return herr.StatusCode()
	}
	return 0
}

// RedactURL returns rawURL fit for logs and errors: the user information of
// a URL (user, password, token) is replaced by "***" and a query string
// dropped. scp-like addresses (git@host:path) and local paths carry no
// secrets and are returned as they are.
func RedactURL(rawURL string) string {
	if !strings.Contains(rawURL, "://") {
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Unparseable: keep the scheme and drop everything up to the last '@'.
		scheme, rest, _ := strings.Cut(rawURL, "://")
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			rest = "***@" + rest[i+1:]
		}
		if i := strings.Index(rest, "?"); i >= 0 {
			rest = rest[:i]
		}
		return scheme + "://" + rest
	}
	out := *u
	out.User = nil
	out.RawQuery, out.ForceQuery, out.Fragment, out.RawFragment = "", false, "", ""
	s := out.String()
	if u.User != nil {
		s = strings.Replace(s, "://", "://***@", 1)
	}
	return s
}

// secretForms returns the strings that must never appear in an error: each
// secret as it is and URL-escaped.
func secretForms(secrets ...string) []string {
	var forms []string
	for _, sec := range secrets {
		if sec != "" {
			forms = append(forms, sec, url.QueryEscape(sec), url.PathEscape(sec))
		}
	}
	return forms
}

// scrub removes the raw URL and every credential the Source holds from msg.
func (s *Source) scrub(msg string) string {
	if s.rawURL != s.redactedURL && s.rawURL != "" {
		msg = strings.ReplaceAll(msg, s.rawURL, s.redactedURL)
	}
	for _, sec := range s.secrets {
		msg = strings.ReplaceAll(msg, sec, "***")
	}
	// One line per problem: servers' messages may span several.
	return strings.Join(strings.Fields(msg), " ")
}
