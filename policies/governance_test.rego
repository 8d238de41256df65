package convoy.governance_test

import data.convoy.governance

writer(u) := {"user": u, "commit_id": "h", "permission": "write", "type": "User", "teams": []}

change(edits, users) := {
	"revision": "ccccccc3333",
	"category": "standard",
	"pull_request": {"number": 9, "author": "alice", "head_sha": "h"},
	"approvals": [writer(u) | some u in users],
	"governance": edits,
}

test_no_edit_no_rule if {
	count(governance.deny) == 0 with input as {"change": change([], ["bob"])}
}

test_edit_needs_major_approvals if {
	governance.deny == {"the change edits the rules that judge it (policies/extra.rego, spec.policy.data): it needs 2 approvals, has 1"} with input as {"change": change(["spec.policy.data", "policies/extra.rego"], ["bob"])}
	count(governance.deny) == 0 with input as {"change": change(["spec.policy.data"], ["bob", "carol"])}
}

test_count_follows_major_then_governance_key if {
	governance.deny == {"the change edits the rules that judge it (CODEOWNERS): it needs 3 approvals, has 2"} with input as {"change": change(["CODEOWNERS"], ["bob", "carol"])}
		with data.convoy.config as {"approvals": {"major": 3}}
	count(governance.deny) == 0 with input as {"change": change(["CODEOWNERS"], ["bob"])}
		with data.convoy.config as {"approvals": {"major": 3, "governance": 1}}
}

test_author_approval_does_not_count if {
	governance.deny == {"the change edits the rules that judge it (CODEOWNERS): it needs 2 approvals, has 1"} with input as {"change": change(["CODEOWNERS"], ["alice", "bob"])}
}

test_each_commit_judged if {
	edit := object.union(change(["policies/x.rego"], ["bob"]), {"pull_request": {"number": 3, "author": "alice", "head_sha": "h"}})
	plain := change([], ["bob"])
	governance.deny == {"pull request #3: the change edits the rules that judge it (policies/x.rego): it needs 2 approvals, has 1"} with input as {"change": object.union(plain, {"commits": [plain, edit]})}
}
