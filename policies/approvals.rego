# Approvals: each change a rollout carries needs as many approvals as its
# category asks for, from the people its rules name, no outstanding change
# requests, and a pull request to reach production.
#
# Only approvals GitHub's own required reviews would count are counted (see
# convoy.lib): people with write, maintain or admin on the repository, apps
# only when data.convoy.config.trustedBots names them, never the author.
#
# data.convoy.config:
#   approvals: category → required approvals (default emergency 1, standard 1,
#     normal 1, major 2; a missing key keeps its default).
#   requireHeadCommit: true counts only approvals of the pull request's head.
#   approvers: separation of duties, a list of rules
#     {categories, environments, teams, users, count}: a change of one of the
#     categories (all when empty) to a cluster of one of the environments (all
#     when empty) needs count approvals from members of teams ("org/slug")
#     or from users.
#   requireCodeOwners: true needs, for every file a change touches that
#     CODEOWNERS gives owners, an approval from one of them.
package convoy.approvals

import data.convoy.lib

# cluster_name keeps messages defined when the input lacks a name.
cluster_name := input.cluster.name if is_string(input.cluster.name)

else := "(unnamed)"

default_required := {"emergency": 1, "standard": 1, "normal": 1, "major": 2}

categories := {"emergency", "standard", "normal", "major", "unreviewed"}

required(c) := n if {
	n := data.convoy.config.approvals[c]
	is_number(n)
} else := default_required[c]

head_note(c) := sprintf(" of head commit %s", [lib.short(lib.head_sha(c))]) if lib.require_head

else := ""

plural(1) := "approval"

plural(n) := "approvals" if n != 1

names(s) := "" if count(s) == 0

else := sprintf(" (%s)", [concat(", ", sort(s))])

# not_counted_note(c) names the approvals of c that did not count, and why.
not_counted_note(c) := "" if count(lib.excluded(c)) == 0

else := sprintf("; not counted: %s", [concat(", ", sort(lib.excluded(c)))])

changes_requested(c) := c.changes_requested if is_array(c.changes_requested)

else := []

deny contains msg if {
	some c in lib.changes
	not c.category in categories
	msg := sprintf("%sunknown change category %q; want one of emergency, standard, normal, major, unreviewed", [lib.prefix(c), c.category])
}

deny contains msg if {
	some c in lib.changes
	c.category in categories
	c.category != "unreviewed"
	need := required(c.category)
	have := lib.approvers(c)
	count(have) < need
	msg := sprintf("%s%s change needs %d %s%s, has %d%s%s", [
		lib.prefix(c), c.category, need, plural(need), head_note(c),
		count(have), names(have), not_counted_note(c),
	])
}

deny contains msg if {
	some c in lib.changes
	count(changes_requested(c)) > 0
	msg := sprintf("%schanges requested by %s are outstanding", [lib.prefix(c), concat(", ", sort(changes_requested(c)))])
}

deny contains msg if {
	some c in lib.changes
	c.category == "unreviewed"
	input.cluster.environment == "production"
	msg := sprintf("%sunreviewed change (no pull request) may not reach production cluster %s", [lib.prefix(c), cluster_name])
}

# --- Separation of duties ----------------------------------------------------

rules := data.convoy.config.approvers if is_array(data.convoy.config.approvers)

else := []

strings(x) := [s | some s in x; is_string(s)] if is_array(x)

else := []

valid_rule(r) if {
	is_object(r)
	is_number(object.get(r, "count", 1))
	count(strings(object.get(r, "teams", []))) + count(strings(object.get(r, "users", []))) > 0
}

matches(list, _) if count(strings(list)) == 0

matches(list, v) if v in strings(list)

applies(r, c) if {
	matches(object.get(r, "categories", []), c.category)
	matches(object.get(r, "environments", []), input.cluster.environment)
}

rule_teams(r) := {lower(trim_prefix(t, "@")) | some t in strings(object.get(r, "teams", []))}

rule_users(r) := {lower(trim_prefix(u, "@")) | some u in strings(object.get(r, "users", []))}

teams(a) := {lower(t) | some t in a.teams; is_string(t)} if is_array(a.teams)

else := set()

from_rule(r, a) if lib.login(a) in rule_users(r)

from_rule(r, a) if count(teams(a) & rule_teams(r)) > 0

rule_name(r) := concat(" or ", array.concat(sort(rule_teams(r)), sort(rule_users(r))))

deny contains msg if {
	some i, r in rules
	not valid_rule(r)
	msg := sprintf("data.convoy.config.approvers[%d] is invalid: want {teams and/or users, count, categories, environments}, got %v", [i, r])
}

deny contains msg if {
	some c in lib.changes
	c.category in categories
	c.category != "unreviewed"
	some r in rules
	valid_rule(r)
	applies(r, c)
	need := object.get(r, "count", 1)
	have := {a.user | some a in lib.counted(c); from_rule(r, a)}
	count(have) < need
	msg := sprintf("%s%s change to %s cluster %s needs %d %s from %s, has %d%s", [
		lib.prefix(c), c.category, input.cluster.environment, cluster_name,
		need, plural(need), rule_name(r), count(have), names(have),
	])
}

# --- Code owners ---------------------------------------------------------------

require_owners if data.convoy.config.requireCodeOwners == true

files(c) := c.files if is_array(c.files)

else := []

owners(f) := strings(f.owners) if is_object(f)

else := []

# owns(o, a): owner o ("@user", "@org/team") is the approver of a or a team of theirs.
owns(o, a) if {
	startswith(o, "@")
	not contains(o, "/")
	lower(substring(o, 1, -1)) == lib.login(a)
}

owns(o, a) if {
	startswith(o, "@")
	contains(o, "/")
	lower(substring(o, 1, -1)) in teams(a)
}

owner_approved(c, f) if {
	some a in lib.counted(c)
	some o in owners(f)
	owns(o, a)
}

deny contains msg if {
	require_owners
	some c in lib.changes
	some f in files(c)
	count(owners(f)) > 0
	not owner_approved(c, f)
	msg := sprintf("%s%s is owned by %s (CODEOWNERS): none of them approved", [lib.prefix(c), f.path, concat(", ", owners(f))])
}
