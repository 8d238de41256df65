# Change record: each normal or major change a rollout carries says how to
# roll it back, each emergency change says why.
#
# A normal or major change needs a pull request whose body has a non-empty
# "## Rollback" section (up to the next level-1 or level-2 heading; HTML
# comments, as left by templates, and fenced code blocks do not make a
# heading). Without a pull request (the trailers change source) the commit
# message must carry it. An emergency change needs a non-empty pull-request
# body (or commit message, without a pull request). Unreviewed changes are
# left to convoy.approvals.
package convoy.change_record

import data.convoy.lib

needs_rollback := {"normal", "major"}

pr(c) := c.pull_request if is_object(c.pull_request)

body(c) := pr(c).body if is_string(pr(c).body)

else := ""

# visible is a Markdown text without its HTML comments.
visible(s) := regex.replace(replace(s, "\r\n", "\n"), `(?s)<!--.*?-->`, "")

fence_pattern := "^ {0,3}(```|~~~)"

# fenced(lines, i): line i is inside a fenced code block (an odd number of
# fence lines before it), or is a fence.
fenced(lines, i) if regex.match(fence_pattern, lines[i])

fenced(lines, i) if {
	count([j | some j, l in lines; j < i; regex.match(fence_pattern, l)]) % 2 == 1
}

has_rollback(text) if {
	lines := split(visible(text), "\n")
	some i, heading in lines
	regex.match(`^ {0,3}##[ \t]+(?i:rollback)\b`, heading)
	not fenced(lines, i)
	ends := [j | some j, l in lines; j > i; regex.match(`^ {0,3}#{1,2}([ \t]|$)`, l); not fenced(lines, j)]
	end := min(array.concat(ends, [count(lines)]))
	content := [l | some k, l in lines; k > i; k < end; trim_space(l) != ""]
	count(content) > 0
}

commit_message(c) := c.commit.message if is_string(c.commit.message)

else := ""

deny contains msg if {
	some c in lib.changes
	c.category in needs_rollback
	pr(c)
	not has_rollback(body(c))
	msg := sprintf("%s%s change needs a rollback plan: pull request #%v has no non-empty \"## Rollback\" section", [lib.prefix(c), c.category, pr(c).number])
}

deny contains msg if {
	some c in lib.changes
	c.category in needs_rollback
	not pr(c)
	not has_rollback(commit_message(c))
	msg := sprintf("%s%s change %s has no pull request and its commit message has no rollback plan: %s changes need a \"## Rollback\" section in the pull request body or, without one, in the commit message", [lib.prefix(c), c.category, lib.short(c.revision), c.category])
}

deny contains msg if {
	some c in lib.changes
	c.category == "emergency"
	pr(c)
	trim_space(visible(body(c))) == ""
	msg := sprintf("%semergency change needs a reason: pull request #%v has an empty body", [lib.prefix(c), pr(c).number])
}

deny contains msg if {
	some c in lib.changes
	c.category == "emergency"
	not pr(c)
	trim_space(commit_message(c)) == ""
	msg := sprintf("%semergency change %s needs a reason: it has no pull request and an empty commit message", [lib.prefix(c), lib.short(c.revision)])
}
