package convoy.change_record_test

import data.convoy.change_record as cr

with_body(category, body) := {"change": {
	"revision": "abcdef0123456",
	"category": category,
	"pull_request": {"number": 7, "body": body, "author": "alice"},
	"commit": {"sha": "abcdef0123456", "message": "Fix it"},
}}

rollback_body := "## Summary\nBump replicas.\n\n## Rollback\nRevert this pull request.\n"

test_normal_with_rollback_allowed if {
	count(cr.deny) == 0 with input as with_body("normal", rollback_body)
}

test_major_without_rollback_denied if {
	cr.deny == {`major change needs a rollback plan: pull request #7 has no non-empty "## Rollback" section`} with input as with_body("major", "## Summary\nBig change.")
}

test_empty_rollback_section_denied if {
	count(cr.deny) == 1 with input as with_body("normal", "## Rollback\n\n   \n## Testing\nDone.")
}

test_rollback_section_with_only_template_comment_denied if {
	count(cr.deny) == 1 with input as with_body("normal", "## Rollback\n<!-- how to undo this change -->\n")
}

test_rollback_subheading_content_counts if {
	count(cr.deny) == 0 with input as with_body("normal", "## Rollback plan\n### Steps\n1. revert\r\n")
}

test_level3_rollback_heading_does_not_count if {
	count(cr.deny) == 1 with input as with_body("normal", "### Rollback\nrevert\n")
}

test_null_body_denied if {
	count(cr.deny) == 1 with input as with_body("major", null)
}

test_standard_needs_no_rollback if {
	count(cr.deny) == 0 with input as with_body("standard", "")
}

test_emergency_needs_reason if {
	cr.deny == {"emergency change needs a reason: pull request #7 has an empty body"} with input as with_body("emergency", "  \n")
	count(cr.deny) == 0 with input as with_body("emergency", "Outage INC-1: roll forward the fix.")
}

test_trailer_normal_change_denied if {
	c := {"revision": "abcdef0123456", "category": "normal", "pull_request": null, "commit": {"message": "x"}}
	cr.deny == {`normal change abcdef0 has no pull request and its commit message has no rollback plan: normal changes need a "## Rollback" section in the pull request body or, without one, in the commit message`} with input as {"change": c}
}

test_trailer_normal_change_with_rollback_in_commit_message_allowed if {
	c := {
		"revision": "abcdef0123456", "category": "normal", "pull_request": null,
		"commit": {"message": "Scale the scheduler\n\n## Rollback\nRevert this commit.\n\nChange-Category: normal\n"},
	}
	count(cr.deny) == 0 with input as {"change": c}
}

test_trailer_emergency_uses_commit_message if {
	c := {"revision": "abcdef0123456", "category": "emergency", "pull_request": null, "commit": {"message": "Hotfix for INC-2"}}
	count(cr.deny) == 0 with input as {"change": c}
	count(cr.deny) == 1 with input as {"change": object.union(c, {"commit": {"message": ""}})}
}

test_unreviewed_skipped if {
	count(cr.deny) == 0 with input as {"change": {"revision": "abc", "category": "unreviewed", "pull_request": null}}
}

test_rollback_heading_in_fenced_code_does_not_count if {
	body := "## Summary\nExample of a plan:\n```markdown\n## Rollback\nRevert it.\n```\n"
	count(cr.deny) == 1 with input as with_body("normal", body)
	tilde := "## Summary\n~~~\n## Rollback\nRevert it.\n~~~\n"
	count(cr.deny) == 1 with input as with_body("normal", tilde)
}

test_rollback_after_a_closed_fence_counts if {
	body := "## Summary\n```\n## Testing\n```\n\n## Rollback\nRevert it.\n"
	count(cr.deny) == 0 with input as with_body("normal", body)
}

test_heading_in_fence_does_not_end_the_section if {
	body := "## Rollback\n```\n# not a heading\nkubectl rollout undo\n```\n"
	count(cr.deny) == 0 with input as with_body("normal", body)
}

test_each_commit_needs_its_plan if {
	with_plan := object.union(with_body("normal", rollback_body).change, {"pull_request": {"number": 7, "body": rollback_body}})
	without := object.union(with_body("major", "no plan").change, {"pull_request": {"number": 8, "body": "no plan"}})
	cr.deny == {`pull request #8: major change needs a rollback plan: pull request #8 has no non-empty "## Rollback" section`} with input as {"change": object.union(with_plan, {"commits": [with_plan, without]})}
}
