package change

import (
	"sort"
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
	State       string
	CommitID    string
	SubmittedAt time.Time
}

// CountReviews turns the reviews of a pull request by author into its
// approvals and the reviewers whose latest verdict requests changes.
//
// For each reviewer only the latest review that states a verdict (APPROVED,
// CHANGES_REQUESTED or DISMISSED) counts; COMMENTED and PENDING reviews never
// change it. "Latest" is the greatest submitted_at, then the greatest id, then
// the later position in reviews. The author's own reviews never count. Logins
// compare case-insensitively, as GitHub's do. Approvals are sorted by user and
// both results are non-nil, so that the policy input never holds null.
func CountReviews(author string, reviews []Review) (approvals []Approval, changesRequested []string) {
	type kept struct {
		review Review
		index  int
	}
	latest := map[string]kept{}
	for i, r := range reviews {
		if r.User == "" || strings.EqualFold(r.User, author) {
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
	changesRequested = []string{}
	for _, k := range latest {
		switch strings.ToUpper(k.review.State) {
		case ReviewApproved:
			approvals = append(approvals, Approval{
				User:        k.review.User,
				CommitID:    k.review.CommitID,
				SubmittedAt: formatTime(k.review.SubmittedAt),
			})
		case ReviewChangesRequested:
			changesRequested = append(changesRequested, k.review.User)
		}
	}
	sort.Slice(approvals, func(i, j int) bool { return approvals[i].User < approvals[j].User })
	sort.Strings(changesRequested)
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
