// Package change finds the change request behind a revision.
//
// A Change is the document of DESIGN.md §4 (`change.*` of the policy input
// and the file of `--change FILE`); its JSON field names are a public contract.
package change

// Categories of a change (DESIGN.md §3).
const (
	// Emergency is a change that must go out now; it needs a stated reason.
	Emergency = "emergency"
	// Standard is a pre-approved, routine change.
	Standard = "standard"
	// Normal is the category of a pull request without a change/<category> label.
	Normal = "normal"
	// Major is a risky change: more approvals, held during business hours.
	Major = "major"
	// Unreviewed is a revision without a pull request.
	Unreviewed = "unreviewed"
)

// Change is the change request behind a revision: its pull request, the
// pull request's approvals and the commit.
type Change struct {
	Revision         string       `json:"revision"`
	PreviousRevision string       `json:"previous_revision"`
	Category         string       `json:"category"`
	PullRequest      *PullRequest `json:"pull_request"` // nil (JSON null) without one
	Approvals        []Approval   `json:"approvals"`
	ChangesRequested []string     `json:"changes_requested"` // reviewers whose latest review requests changes
	Commit           Commit       `json:"commit"`
}

// PullRequest is the pull request that brought a revision to the main branch.
type PullRequest struct {
	Number  int      `json:"number"`
	Title   string   `json:"title"`
	Body    string   `json:"body"`
	Author  string   `json:"author"`
	Labels  []string `json:"labels"`
	HeadSHA string   `json:"head_sha"`
	Merged  bool     `json:"merged"`
	URL     string   `json:"url"`
}

// Approval is a reviewer's approval, counted only when it is that reviewer's latest review.
type Approval struct {
	User        string `json:"user"`
	CommitID    string `json:"commit_id"`    // the commit the review approved
	SubmittedAt string `json:"submitted_at"` // RFC 3339
}

// Commit is the commit being rolled out.
type Commit struct {
	SHA      string `json:"sha"`
	Author   string `json:"author"`
	Message  string `json:"message"`
	Verified bool   `json:"verified"`
}
