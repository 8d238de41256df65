// Package change finds the change request behind a revision.
//
// A Change is the change document (`change.*` of the policy input
// and the file of `--change FILE`); its JSON field names are a public contract.
package change

// Categories of a change, from most to least urgent.
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
//
// A rollout carries every commit between what a cluster runs and the
// target revision: Commits lists the change of each (newest first), and the
// top-level fields describe the target revision with Category the strictest
// among Commits (see Strictest). A change with no Commits is judged alone.
type Change struct {
	Revision         string       `json:"revision"`
	PreviousRevision string       `json:"previous_revision"`
	Category         string       `json:"category"`
	PullRequest      *PullRequest `json:"pull_request"` // nil (JSON null) without one
	// Approvals are the reviewers whose latest verdict is APPROVED, every
	// one of them, with what decides whether it counts (Permission, Type,
	// the author): policies count them and say why one did not count.
	Approvals        []Approval `json:"approvals"`
	ChangesRequested []string   `json:"changes_requested"` // writers whose latest review requests changes
	Commit           Commit     `json:"commit"`
	// Files are the paths the change touches, with their code owners.
	Files []File `json:"files,omitempty"`
	// Governance names what the change edits of the rules that judge it
	// (policies/, CODEOWNERS, fleet.yaml's policy data, windows, change
	// source, clusters' environment or capacity); empty when nothing.
	Governance []string `json:"governance,omitempty"`
	// Commits are the changes a rollout carries, newest first.
	Commits []Change `json:"commits,omitempty"`
}

// PullRequest is the pull request that brought a revision to the main branch.
type PullRequest struct {
	Number  int      `json:"number"`
	Title   string   `json:"title"`
	Body    string   `json:"body"`
	Author  string   `json:"author"`
	Labels  []string `json:"labels"`
	HeadSHA string   `json:"head_sha"`
	BaseSHA string   `json:"base_sha,omitempty"`
	Merged  bool     `json:"merged"`
	URL     string   `json:"url"`
	// Fork reports a pull request whose head is in another repository.
	Fork bool `json:"fork,omitempty"`
}

// Approval is a reviewer's approval: the reviewer's latest verdict.
type Approval struct {
	User        string `json:"user"`
	CommitID    string `json:"commit_id"`    // the commit the review approved
	SubmittedAt string `json:"submitted_at"` // RFC 3339
	// Permission is the reviewer's role on the repository when the change
	// was read: admin, maintain, write, triage, read or none; "" when
	// unknown (an app, or a change file that does not say).
	Permission string `json:"permission"`
	// Type is the reviewer's account type: User, Bot or Organization.
	Type string `json:"type"`
	// Teams are the teams, "org/slug", that the policies name and the
	// reviewer belongs to.
	Teams []string `json:"teams"`
}

// File is a path a change touches and its code owners (CODEOWNERS: "@user",
// "@org/team" or an email).
type File struct {
	Path   string   `json:"path"`
	Owners []string `json:"owners"`
}

// Commit is the commit being rolled out.
type Commit struct {
	SHA      string `json:"sha"`
	Author   string `json:"author"`
	Message  string `json:"message"`
	Verified bool   `json:"verified"`
}

// strictness orders categories from the least to the most demanding: a
// rollout that carries several changes is of the strictest among them.
var strictness = map[string]int{Emergency: 0, Standard: 1, Normal: 2, Major: 3, Unreviewed: 4}

// Strictest returns the strictest of categories (an unknown one is the
// strictest of all: policies deny it by name); "" for none.
func Strictest(categories ...string) string {
	best, rank := "", -1
	for _, c := range categories {
		r, ok := strictness[c]
		if !ok {
			r = len(strictness)
		}
		if r > rank {
			best, rank = c, r
		}
	}
	return best
}
