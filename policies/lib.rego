# Helpers the built-in policies share: what a rollout carries and whose
# approval counts. Repository policies may read them (import data.convoy.lib)
# but never redefine them: convoy.lib is a built-in package.
package convoy.lib

# changes are what a rollout carries: the change of each commit between what
# the cluster runs and the target (change.commits, newest first), or the
# change itself when it lists none. Each must pass the policies on its own.
changes := input.change.commits if {
	is_array(input.change.commits)
	count(input.change.commits) > 0
} else := [input.change]

writer_roles := {"admin", "maintain", "write"}

# trusted_bots are the apps whose approvals count (data.convoy.config.trustedBots).
trusted_bots := {lower(b) | some b in data.convoy.config.trustedBots; is_string(b)}

require_head if data.convoy.config.requireHeadCommit == true

short(sha) := substring(sha, 0, 7) if is_string(sha)

else := ""

author(c) := lower(c.pull_request.author) if {
	is_object(c.pull_request)
	is_string(c.pull_request.author)
} else := ""

login(a) := lower(a.user) if is_string(a.user)

else := ""

is_bot(a) if lower(object.get(a, "type", "")) == "bot"

is_bot(a) if endswith(login(a), "[bot]")

permission(a) := lower(a.permission) if is_string(a.permission)

else := ""

# head_sha(c) is the commit approvals must name when requireHeadCommit is set.
head_sha(c) := c.pull_request.head_sha if is_object(c.pull_request)

else := c.revision

# not_counted(c, a) says why approval a of change c does not count, "" when
# it counts: as GitHub's own required reviews, only people with write,
# maintain or admin on the repository count, apps only when trustedBots
# names them, and never the author. internal/change.NotCounted decides the
# same in Go.
not_counted(c, a) := "author of the pull request" if {
	author(c) != ""
	login(a) == author(c)
} else := "" if {
	is_bot(a)
	login(a) in trusted_bots
} else := "app" if {
	is_bot(a)
} else := sprintf("not a user (%s)", [a.type]) if {
	is_string(a.type)
	a.type != ""
	lower(a.type) != "user"
} else := "" if {
	permission(a) in writer_roles
} else := "unknown access" if {
	permission(a) == ""
} else := "no access" if {
	permission(a) == "none"
} else := sprintf("%s access", [permission(a)])

# reason(c, a) is not_counted(c, a), or, with requireHeadCommit, that a
# approved another commit than the head.
reason(c, a) := r if {
	r := not_counted(c, a)
	r != ""
} else := sprintf("approved %s, not the head commit %s", [short(a.commit_id), short(head_sha(c))]) if {
	require_head
	a.commit_id != head_sha(c)
} else := ""

approvals(c) := c.approvals if is_array(c.approvals)

else := []

# counted(c) are the approvals of c that count.
counted(c) := [a | some a in approvals(c); is_string(a.user); reason(c, a) == ""]

# approvers(c) are the logins whose approval of c counts.
approvers(c) := {a.user | some a in counted(c)}

# excluded(c) says, per approval of c that does not count, who and why:
# "mallory: read access".
excluded(c) := {sprintf("%s: %s", [a.user, r]) |
	some a in approvals(c)
	is_string(a.user)
	r := reason(c, a)
	r != ""
}

# label(c) names change c in messages.
label(c) := sprintf("pull request #%v", [c.pull_request.number]) if is_object(c.pull_request)

else := sprintf("commit %s", [short(c.revision)])

# prefix(c) starts the messages about c: "" when the rollout carries one
# change, else its label.
prefix(_) := "" if count(changes) == 1

prefix(c) := sprintf("%s: ", [label(c)]) if count(changes) > 1

# categories are the categories of the changes a rollout carries.
categories := {c.category | some c in changes}
