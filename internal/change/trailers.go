package change

import (
	"context"
	"fmt"
	"strings"
)

// Trailer keys that the trailers source reads (case-insensitive).
const (
	TrailerCategory   = "Change-Category"
	TrailerApprovedBy = "Approved-by"
)

// Trailer is one "Key: value" trailer of a commit message.
type Trailer struct {
	Key   string // as written
	Value string // trimmed, continuation lines joined with one space
}

// CommitReader returns the message and the author ("Name <email>") of revision.
type CommitReader func(ctx context.Context, revision string) (message, author string, err error)

// Trailers reads change requests from the trailers of the commit being rolled
// out: Change-Category: <category> and one Approved-by: <name or email> per
// approver, for forges without an API and for the local demo.
//
// Trailers are LOW TRUST: anyone who can push a commit can write any trailer,
// approvals included. Use this source only behind branch protection that
// makes reviewed merges the only way to the branch, or for demos.
type Trailers struct {
	read CommitReader
}

var _ Source = (*Trailers)(nil)

// NewTrailers returns a trailers change source that reads commits with read.
func NewTrailers(read CommitReader) *Trailers { return &Trailers{read: read} }

// Change returns the change that revision's commit message states.
func (t *Trailers) Change(ctx context.Context, revision string) (*Change, error) {
	message, author, err := t.read(ctx, revision)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", revision, err)
	}
	return ChangeFromMessage(revision, author, message)
}

// ChangeFromMessage builds the change of revision from its commit message:
// the category from Change-Category (Normal without one; an error matching
// ErrInvalidCategory for an unknown one or two different ones) and one
// approval per distinct Approved-by, the author's own never counting.
// Approvals carry revision as their commit_id and no submitted_at. A
// trailer cannot say whether its approver may approve: every one is taken
// as a writer's (Permission "write", Type "User"), which is why this source
// is low trust.
func ChangeFromMessage(revision, author, message string) (*Change, error) {
	where := "commit " + revision
	var categories []string
	approvals := []Approval{}
	seen := map[string]bool{}
	for _, tr := range ParseTrailers(message) {
		switch {
		case strings.EqualFold(tr.Key, TrailerCategory):
			categories = append(categories, tr.Value)
		case strings.EqualFold(tr.Key, TrailerApprovedBy):
			if tr.Value == "" || sameIdentity(tr.Value, author) {
				continue
			}
			key := identityKey(tr.Value)
			if seen[key] {
				continue
			}
			seen[key] = true
			approvals = append(approvals, Approval{User: tr.Value, CommitID: revision, Permission: "write", Type: TypeUser, Teams: []string{}})
		}
	}
	category, err := categoryOf(where, categories)
	if err != nil {
		return nil, err
	}
	return &Change{
		Revision:         revision,
		Category:         category,
		Approvals:        approvals,
		ChangesRequested: []string{},
		Commit:           Commit{SHA: revision, Author: author, Message: message},
	}, nil
}

// ParseTrailers returns the trailers of a commit message, as git
// interpret-trailers finds them in the simple case: the last paragraph (never
// the first, which is the title) is the trailer block when each of its lines
// is "Token: value" (token of letters, digits and '-') or a continuation line
// that starts with a space or tab and follows a trailer. Otherwise there are none.
func ParseTrailers(message string) []Trailer {
	message = strings.ReplaceAll(message, "\r\n", "\n")
	lines := strings.Split(message, "\n")
	for len(lines) > 0 && isBlank(lines[len(lines)-1]) {
		lines = lines[:len(lines)-1]
	}
	first := -1
	for i, l := range lines {
		if !isBlank(l) {
			first = i
			break
		}
	}
	start := -1
	for i := len(lines) - 1; i > first; i-- {
		if isBlank(lines[i]) {
			start = i + 1
			break
		}
	}
	if first < 0 || start < 0 {
		return nil
	}
	var out []Trailer
	for _, l := range lines[start:] {
		if l[0] == ' ' || l[0] == '\t' {
			if len(out) == 0 {
				return nil
			}
			last := &out[len(out)-1]
			if last.Value == "" {
				last.Value = trimASCII(l)
			} else {
				last.Value += " " + trimASCII(l)
			}
			continue
		}
		key, value, ok := splitTrailer(l)
		if !ok {
			return nil
		}
		out = append(out, Trailer{Key: key, Value: value})
	}
	return out
}

// splitTrailer splits "Token: value"; whitespace may stand before the colon.
func splitTrailer(line string) (key, value string, ok bool) {
	i := 0
	for i < len(line) && isTokenByte(line[i]) {
		i++
	}
	if i == 0 {
		return "", "", false
	}
	key = line[:i]
	rest := strings.TrimLeft(line[i:], " \t")
	if !strings.HasPrefix(rest, ":") {
		return "", "", false
	}
	return key, trimASCII(rest[1:]), true
}

func isTokenByte(b byte) bool {
	return b == '-' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

const asciiSpace = " \t\n\v\f\r"

func trimASCII(s string) string { return strings.Trim(s, asciiSpace) }

func isBlank(s string) bool { return trimASCII(s) == "" }

// identityKey is what makes two names of a person the same: the email of
// "Name <email>" or a bare email, else the name; case-insensitive.
func identityKey(s string) string {
	if email := emailOf(s); email != "" {
		return "email:" + email
	}
	return "name:" + strings.ToLower(trimASCII(s))
}

// emailOf returns the lower-cased email of "Name <email>" or of a bare email, else "".
func emailOf(s string) string {
	s = trimASCII(s)
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		return strings.ToLower(trimASCII(s[i+1 : len(s)-1]))
	}
	if strings.Contains(s, "@") && !strings.ContainsAny(s, asciiSpace) {
		return strings.ToLower(s)
	}
	return ""
}

// nameOf returns the name of "Name <email>", or s itself.
func nameOf(s string) string {
	s = trimASCII(s)
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		return trimASCII(s[:i])
	}
	return s
}

// sameIdentity reports whether approver names author: the same email, or the
// same name when approver gives no email.
func sameIdentity(approver, author string) bool {
	if trimASCII(author) == "" {
		return false
	}
	if a, b := emailOf(approver), emailOf(author); a != "" {
		return a == b
	}
	return strings.EqualFold(nameOf(approver), nameOf(author))
}
