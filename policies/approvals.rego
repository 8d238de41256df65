# Approvals: a change needs as many approvals as its category asks for, no
# outstanding change requests, and a pull request to reach production.
#
# data.convoy.config.approvals maps a category to its required approvals
# (default emergency 1, standard 1, normal 1, major 2; a missing key keeps its
# default). data.convoy.config.requireHeadCommit: true counts only approvals
# of the pull request's head commit (of the revision when there is no pull
# request). The pull request's author never counts.
package convoy.approvals

# cluster_name keeps messages defined when the input lacks a name.
cluster_name := input.cluster.name if is_string(input.cluster.name)

else := "(unnamed)"

default_required := {"emergency": 1, "standard": 1, "normal": 1, "major": 2}

categories := {"emergency", "standard", "normal", "major", "unreviewed"}

category := input.change.category

required(c) := n if {
	n := data.convoy.config.approvals[c]
} else := default_required[c]

require_head if data.convoy.config.requireHeadCommit == true

head_sha := input.change.pull_request.head_sha if {
	is_object(input.change.pull_request)
} else := input.change.revision

author := input.change.pull_request.author if {
	is_object(input.change.pull_request)
} else := ""

approvals := input.change.approvals if is_array(input.change.approvals)

else := []

changes_requested := input.change.changes_requested if {
	is_array(input.change.changes_requested)
} else := []

counts(_) if not require_head

counts(a) if {
	require_head
	a.commit_id == head_sha
}

approvers contains a.user if {
	some a in approvals
	a.user != author
	counts(a)
}

head_note := sprintf(" of head commit %s", [substring(head_sha, 0, 7)]) if require_head

else := ""

plural(1) := "approval"

plural(n) := "approvals" if n != 1

approver_note := "" if count(approvers) == 0

else := sprintf(" (%s)", [concat(", ", sort(approvers))])

deny contains msg if {
	not category in categories
	msg := sprintf("unknown change category %q; want one of emergency, standard, normal, major, unreviewed", [category])
}

deny contains msg if {
	category in categories
	category != "unreviewed"
	need := required(category)
	count(approvers) < need
	msg := sprintf("%s change needs %d %s%s, has %d%s", [
		category, need, plural(need), head_note, count(approvers), approver_note,
	])
}

deny contains msg if {
	count(changes_requested) > 0
	msg := sprintf("changes requested by %s are outstanding", [concat(", ", sort(changes_requested))])
}

deny contains msg if {
	category == "unreviewed"
	input.cluster.environment == "production"
	msg := sprintf("unreviewed change (no pull request) may not reach production cluster %s", [cluster_name])
}
