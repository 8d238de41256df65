# Change record: a normal or major change says how to roll it back, an
# emergency change says why.
#
# A normal or major change needs a pull request whose body has a non-empty
# "## Rollback" section (up to the next level-1 or level-2 heading; HTML
# comments, as left by templates, do not count). Changes from commit trailers
# have no pull request, so they cannot be normal or major. An emergency change
# needs a non-empty pull-request body (or commit message, without a pull
# request). Unreviewed changes are left to convoy.approvals.
package convoy.change_record

needs_rollback := {"normal", "major"}

category := input.change.category

pr := input.change.pull_request if is_object(input.change.pull_request)

body := pr.body if is_string(pr.body)

else := ""

# visible is a Markdown text without its HTML comments.
visible(s) := regex.replace(replace(s, "\r\n", "\n"), `(?s)<!--.*?-->`, "")

has_rollback(text) if {
	lines := split(visible(text), "\n")
	some i, heading in lines
	regex.match(`^ {0,3}##[ \t]+(?i:rollback)\b`, heading)
	ends := [j | some j, l in lines; j > i; regex.match(`^ {0,3}#{1,2}([ \t]|$)`, l)]
	end := min(array.concat(ends, [count(lines)]))
	content := [l | some k, l in lines; k > i; k < end; trim_space(l) != ""]
	count(content) > 0
}

short(sha) := substring(sha, 0, 7) if is_string(sha)

else := ""

deny contains msg if {
	category in needs_rollback
	pr
	not has_rollback(body)
	msg := sprintf("%s change needs a rollback plan: pull request #%v has no non-empty \"## Rollback\" section", [category, pr.number])
}

# Without a pull request (the trailers change source) the commit message is
# the change record: it must carry the rollback plan.
commit_message := input.change.commit.message if is_string(input.change.commit.message)

else := ""

deny contains msg if {
	category in needs_rollback
	not pr
	not has_rollback(commit_message)
	msg := sprintf("%s change %s has no pull request and its commit message has no rollback plan: %s changes need a \"## Rollback\" section in the pull request body or, without one, in the commit message", [category, short(input.change.revision), category])
}

deny contains msg if {
	category == "emergency"
	pr
	trim_space(visible(body)) == ""
	msg := sprintf("emergency change needs a reason: pull request #%v has an empty body", [pr.number])
}

deny contains msg if {
	category == "emergency"
	not pr
	trim_space(object.get(input.change, ["commit", "message"], "")) == ""
	msg := sprintf("emergency change %s needs a reason: it has no pull request and an empty commit message", [short(input.change.revision)])
}
