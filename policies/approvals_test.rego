package convoy.approvals_test

import data.convoy.approvals

pr := {"number": 42, "title": "t", "body": "b", "author": "alice", "labels": [], "head_sha": "aaaaaaa1111", "merged": true, "url": ""}

change(category, users) := {
	"revision": "ccccccc3333",
	"category": category,
	"pull_request": pr,
	"approvals": [{"user": u, "commit_id": "aaaaaaa1111", "submitted_at": "2026-11-24T10:00:00Z"} | some u in users],
	"changes_requested": [],
}

prod := {"name": "prod-primary", "environment": "production"}

staging := {"name": "staging", "environment": "staging"}

test_major_with_two_approvals_allowed if {
	count(approvals.deny) == 0 with input as {"cluster": prod, "change": change("major", ["bob", "carol"])}
}

test_major_with_one_approval_denied if {
	approvals.deny == {"major change needs 2 approvals, has 1 (bob)"} with input as {"cluster": prod, "change": change("major", ["bob"])}
}

test_normal_without_approvals_denied if {
	approvals.deny == {"normal change needs 1 approval, has 0"} with input as {"cluster": staging, "change": change("normal", [])}
}

test_emergency_one_approval_allowed if {
	count(approvals.deny) == 0 with input as {"cluster": prod, "change": change("emergency", ["bob"])}
}

test_author_never_counts if {
	approvals.deny == {"major change needs 2 approvals, has 1 (bob)"} with input as {"cluster": prod, "change": change("major", ["alice", "bob"])}
}

test_config_overrides_one_key_keeps_other_defaults if {
	cfg := {"approvals": {"normal": 2}}
	approvals.deny == {"normal change needs 2 approvals, has 1 (bob)"} with input as {"cluster": prod, "change": change("normal", ["bob"])}
		with data.convoy.config as cfg
	approvals.deny == {"major change needs 2 approvals, has 1 (bob)"} with input as {"cluster": prod, "change": change("major", ["bob"])}
		with data.convoy.config as cfg
}

test_config_zero_approvals_for_standard if {
	count(approvals.deny) == 0 with input as {"cluster": prod, "change": change("standard", [])}
		with data.convoy.config as {"approvals": {"standard": 0}}
}

test_changes_requested_denies_even_when_approved if {
	c := object.union(change("normal", ["bob"]), {"changes_requested": ["dave", "carol"]})
	approvals.deny == {"changes requested by carol, dave are outstanding"} with input as {"cluster": staging, "change": c}
}

test_unreviewed_denied_on_production if {
	c := object.union(change("unreviewed", []), {"pull_request": null})
	approvals.deny == {"unreviewed change (no pull request) may not reach production cluster prod-primary"} with input as {"cluster": prod, "change": c}
}

test_unreviewed_allowed_on_staging if {
	c := object.union(change("unreviewed", []), {"pull_request": null})
	count(approvals.deny) == 0 with input as {"cluster": staging, "change": c}
}

test_require_head_commit_ignores_stale_approvals if {
	c := object.union(change("major", ["bob"]), {"approvals": [
		{"user": "bob", "commit_id": "aaaaaaa1111"},
		{"user": "carol", "commit_id": "0ld0000stale"},
	]})
	approvals.deny == {"major change needs 2 approvals of head commit aaaaaaa, has 1 (bob)"} with input as {"cluster": prod, "change": c}
		with data.convoy.config as {"requireHeadCommit": true}
}

test_stale_approvals_count_without_require_head_commit if {
	c := object.union(change("major", ["bob"]), {"approvals": [
		{"user": "bob", "commit_id": "aaaaaaa1111"},
		{"user": "carol", "commit_id": "0ld0000stale"},
	]})
	count(approvals.deny) == 0 with input as {"cluster": prod, "change": c}
}

test_unknown_category_denied if {
	approvals.deny == {`unknown change category "hotfix"; want one of emergency, standard, normal, major, unreviewed`} with input as {"cluster": prod, "change": change("hotfix", ["bob"])}
}

test_null_approvals_treated_as_none if {
	c := object.union(change("normal", []), {"approvals": null, "changes_requested": null})
	approvals.deny == {"normal change needs 1 approval, has 0"} with input as {"cluster": staging, "change": c}
}

test_duplicate_approver_counts_once if {
	approvals.deny == {"major change needs 2 approvals, has 1 (bob)"} with input as {"cluster": prod, "change": change("major", ["bob", "bob"])}
}
