package change

import (
	"slices"
	"strings"
	"time"
)

// Review states of GitHub's pull-request reviews API.
const (
	ReviewApproved         = "APPROVED"
	ReviewChangesRequested = "CHANGES_REQUESTED"
	ReviewDismissed        = "DISMISSED"
	ReviewCommented        = "COMMENTED"
	ReviewPending          = "PENDING"
)

// Review is one pull-request review as the reviews API lists it.
type Review struct {
	ID          int64
	User        string
	Type        string // the reviewer's account type: User, Bot, Organization
	State       string
	CommitID    string
	SubmittedAt time.Time
}

// CountReviews turns the reviews of a pull request by author into its
// approvals and its change requests.
//
// For each reviewer only the latest review that states a verdict (APPROVED,
// CHANGES_REQUESTED or DISMISSED) counts; COMMENTED and PENDING reviews never
// change it. "Latest" is the greatest submitted_at, then the greatest id, then
// the later position in reviews. Approvals keep every reviewer whose latest
// verdict approves, the author included, so that policies can say why one
// does not count (NotCounted); the author's change requests are left out.
// Reviews without a user (deleted accounts) are left out. Logins compare
// case-insensitively, as GitHub's do. Both results are sorted by user and
// non-nil, so that the policy input never holds null.
func CountReviews(author string, reviews []Review) (approvals, changesRequested []Approval) {
	type kept struct {
		review Review
		index  int
	}
	latest := map[string]kept{}
	for i, r := range reviews {
		if r.User == "" {
			continue
		}
		switch strings.ToUpper(r.State) {
		case ReviewApproved, ReviewChangesRequested, ReviewDismissed:
		default:
			continue
		}
		key := strings.ToLower(r.User)
		if k, ok := latest[key]; ok && !later(r, i, k.review, k.index) {
			continue
		}
		latest[key] = kept{review: r, index: i}
	}

	approvals = []Approval{}
	changesRequested = []Approval{}
	for _, k := range latest {
		a := Approval{
			User:        k.review.User,
			CommitID:    k.review.CommitID,
			SubmittedAt: formatTime(k.review.SubmittedAt),
			Type:        k.review.Type,
			Teams:       []string{},
		}
		switch strings.ToUpper(k.review.State) {
		case ReviewApproved:
			approvals = append(approvals, a)
		case ReviewChangesRequested:
			if !strings.EqualFold(k.review.User, author) {
				changesRequested = append(changesRequested, a)
			}
		}
	}
	byUser := func(a, b Approval) int { return strings.Compare(a.User, b.User) }
	slices.SortFunc(approvals, byUser)
	slices.SortFunc(changesRequested, byUser)
	return approvals, changesRequested
}

// later reports whether review a (at index ai) was given after review b (at index bi).
func later(a Review, ai int, b Review, bi int) bool {
	if !a.SubmittedAt.Equal(b.SubmittedAt) {
		return a.SubmittedAt.After(b.SubmittedAt)
	}
	if a.ID != b.ID {
		return a.ID > b.ID
	}
	return ai > bi
}

// formatTime renders t as RFC 3339 in UTC, or "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
