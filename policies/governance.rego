# Governance: a change that edits the rules that judge it needs the approvals
# of a major change.
#
# The rules are the repository's policies/, CODEOWNERS, and in fleet.yaml the
# policy data, the windows, the change source and each cluster's environment
# and capacity. convoy judges every change by the rules of its trusted base
# (what the cluster runs, the pull request's base), never by its own, and
# names what a change edits of them in change.governance. Such a change needs
# data.convoy.config.approvals.governance approvals (default: as many as a
# major change).
package convoy.governance

import data.convoy.lib

required := n if {
	n := data.convoy.config.approvals.governance
	is_number(n)
} else := n if {
	n := data.convoy.config.approvals.major
	is_number(n)
} else := 2

edits(c) := [g | some g in c.governance; is_string(g)] if is_array(c.governance)

else := []

plural(1) := "approval"

plural(n) := "approvals" if n != 1

deny contains msg if {
	some c in lib.changes
	count(edits(c)) > 0
	have := lib.approvers(c)
	count(have) < required
	msg := sprintf("%sthe change edits the rules that judge it (%s): it needs %d %s, has %d", [
		lib.prefix(c), concat(", ", sort(edits(c))), required, plural(required), count(have),
	])
}
