package convoy.approvals_test

import data.convoy.approvals

pr := {"number": 42, "title": "t", "body": "b", "author": "alice", "labels": [], "head_sha": "aaaaaaa1111", "merged": true, "url": ""}

# writer(u) is an approval of the head by u, a user with write access.
writer(u) := {"user": u, "commit_id": "aaaaaaa1111", "submitted_at": "2026-11-24T10:00:00Z", "permission": "write", "type": "User", "teams": []}

change(category, users) := {
	"revision": "ccccccc3333",
	"category": category,
	"pull_request": pr,
	"approvals": [writer(u) | some u in users],
	"changes_requested": [],
}

with_approvals(c, list) := object.union(c, {"approvals": list})

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

test_author_never_counts_and_is_named if {
	approvals.deny == {"major change needs 2 approvals, has 1 (bob); not counted: alice: author of the pull request"} with input as {"cluster": prod, "change": change("major", ["alice", "bob"])}
}

test_author_compared_case_insensitively if {
	approvals.deny == {"major change needs 2 approvals, has 1 (bob); not counted: ALICE: author of the pull request"} with input as {"cluster": prod, "change": change("major", ["ALICE", "bob"])}
}

test_self_approval_alone_says_so if {
	approvals.deny == {"normal change needs 1 approval, has 0; not counted: alice: author of the pull request"} with input as {"cluster": staging, "change": change("normal", ["alice"])}
}

# A stranger and an app approve a public repository's pull request beside
# one collaborator: GitHub counts only the collaborator, and so does convoy.
test_stranger_and_bot_do_not_count if {
	c := with_approvals(change("major", []), [
		writer("bob"),
		object.union(writer("mallory"), {"permission": "read"}),
		object.union(writer("renovate[bot]"), {"permission": "", "type": "Bot"}),
	])
	approvals.deny == {"major change needs 2 approvals, has 1 (bob); not counted: mallory: read access, renovate[bot]: app"} with input as {"cluster": prod, "change": c}
}

test_every_role_below_write_is_named if {
	c := with_approvals(change("normal", []), [
		object.union(writer("t"), {"permission": "triage"}),
		object.union(writer("n"), {"permission": "none"}),
		object.union(writer("u"), {"permission": null}),
		object.union(writer("org"), {"type": "Organization"}),
	])
	approvals.deny == {"normal change needs 1 approval, has 0; not counted: n: no access, org: not a user (Organization), t: triage access, u: unknown access"} with input as {"cluster": staging, "change": c}
}

test_maintain_and_admin_count if {
	c := with_approvals(change("major", []), [
		object.union(writer("m"), {"permission": "maintain"}),
		object.union(writer("a"), {"permission": "ADMIN"}),
	])
	count(approvals.deny) == 0 with input as {"cluster": prod, "change": c}
}

test_trusted_bot_counts if {
	c := with_approvals(change("normal", []), [object.union(writer("Renovate[bot]"), {"permission": "", "type": "Bot"})])
	count(approvals.deny) == 0 with input as {"cluster": staging, "change": c}
		with data.convoy.config as {"trustedBots": ["renovate[bot]"]}
}

test_bot_by_login_suffix_is_an_app if {
	c := with_approvals(change("normal", []), [object.union(writer("deploy[bot]"), {"type": "User"})])
	approvals.deny == {"normal change needs 1 approval, has 0; not counted: deploy[bot]: app"} with input as {"cluster": staging, "change": c}
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
	c := with_approvals(change("major", []), [writer("bob"), object.union(writer("carol"), {"commit_id": "0ld0000stale"})])
	approvals.deny == {"major change needs 2 approvals of head commit aaaaaaa, has 1 (bob); not counted: carol: approved 0ld0000, not the head commit aaaaaaa"} with input as {"cluster": prod, "change": c}
		with data.convoy.config as {"requireHeadCommit": true}
}

test_stale_approvals_count_without_require_head_commit if {
	c := with_approvals(change("major", []), [writer("bob"), object.union(writer("carol"), {"commit_id": "0ld0000stale"})])
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

# --- Separation of duties ----------------------------------------------------

prod_owners := {"approvers": [{"categories": ["major"], "environments": ["production"], "teams": ["acme/prod-owners"], "count": 2}]}

member(u, teams) := object.union(writer(u), {"teams": teams})

test_team_rule_allows_two_members if {
	c := with_approvals(change("major", []), [member("bob", ["acme/prod-owners"]), member("carol", ["acme/prod-owners"])])
	count(approvals.deny) == 0 with input as {"cluster": prod, "change": c} with data.convoy.config as prod_owners
}

test_team_rule_denies_one_member_and_another_writer if {
	c := with_approvals(change("major", []), [member("bob", ["acme/prod-owners"]), member("dave", ["acme/web"])])
	approvals.deny == {"major change to production cluster prod-primary needs 2 approvals from acme/prod-owners, has 1 (bob)"} with input as {"cluster": prod, "change": c}
		with data.convoy.config as prod_owners
}

test_team_rule_ignores_other_environments_and_categories if {
	c := with_approvals(change("major", []), [writer("bob"), writer("dave")])
	count(approvals.deny) == 0 with input as {"cluster": staging, "change": c} with data.convoy.config as prod_owners
	n := with_approvals(change("normal", []), [writer("bob")])
	count(approvals.deny) == 0 with input as {"cluster": prod, "change": n} with data.convoy.config as prod_owners
}

test_team_member_without_write_access_does_not_count if {
	c := with_approvals(change("major", []), [member("bob", ["acme/prod-owners"]), object.union(member("eve", ["acme/prod-owners"]), {"permission": "read"})])
	approvals.deny == {
		"major change needs 2 approvals, has 1 (bob); not counted: eve: read access",
		"major change to production cluster prod-primary needs 2 approvals from acme/prod-owners, has 1 (bob)",
	} with input as {"cluster": prod, "change": c} with data.convoy.config as prod_owners
}

test_user_rule if {
	cfg := {"approvers": [{"users": ["@Carol"], "count": 1}]}
	approvals.deny == {"normal change to staging cluster staging needs 1 approval from carol, has 0"} with input as {"cluster": staging, "change": change("normal", ["bob"])}
		with data.convoy.config as cfg
	count(approvals.deny) == 0 with input as {"cluster": staging, "change": change("normal", ["carol"])} with data.convoy.config as cfg
}

test_invalid_rule_denies if {
	approvals.deny == {`data.convoy.config.approvers[0] is invalid: want {teams and/or users, count, categories, environments}, got {"count": 1}`} with input as {"cluster": staging, "change": change("normal", ["bob"])}
		with data.convoy.config as {"approvers": [{"count": 1}]}
}

# --- Code owners -----------------------------------------------------------------

owned(c, files) := object.union(c, {"files": files})

test_code_owner_must_approve if {
	c := owned(change("normal", ["bob"]), [
		{"path": "clusters/prod/app.yaml", "owners": ["@acme/prod-owners"]},
		{"path": "README.md", "owners": []},
	])
	approvals.deny == {"clusters/prod/app.yaml is owned by @acme/prod-owners (CODEOWNERS): none of them approved"} with input as {"cluster": staging, "change": c}
		with data.convoy.config as {"requireCodeOwners": true}
}

test_code_owner_by_team_or_user if {
	team := owned(with_approvals(change("normal", []), [member("bob", ["acme/prod-owners"])]), [{"path": "a", "owners": ["@acme/prod-owners"]}])
	count(approvals.deny) == 0 with input as {"cluster": staging, "change": team} with data.convoy.config as {"requireCodeOwners": true}
	user := owned(change("normal", ["Bob"]), [{"path": "a", "owners": ["@alice", "@bob"]}])
	count(approvals.deny) == 0 with input as {"cluster": staging, "change": user} with data.convoy.config as {"requireCodeOwners": true}
}

test_code_owners_off_by_default if {
	c := owned(change("normal", ["bob"]), [{"path": "a", "owners": ["@carol"]}])
	count(approvals.deny) == 0 with input as {"cluster": staging, "change": c}
}

test_the_author_is_no_code_owner_of_their_change if {
	c := owned(change("normal", ["alice", "bob"]), [{"path": "a", "owners": ["@alice"]}])
	approvals.deny == {"a is owned by @alice (CODEOWNERS): none of them approved"} with input as {"cluster": staging, "change": c}
		with data.convoy.config as {"requireCodeOwners": true}
}

# --- Every change a rollout carries ------------------------------------------------

test_each_commit_needs_its_own_approvals if {
	major := object.union(change("major", ["bob"]), {"pull_request": object.union(pr, {"number": 7})})
	standard := object.union(change("standard", ["carol"]), {"pull_request": object.union(pr, {"number": 8})})
	top := object.union(standard, {"category": "major", "commits": [standard, major]})
	approvals.deny == {"pull request #7: major change needs 2 approvals, has 1 (bob)"} with input as {"cluster": prod, "change": top}
}

test_unreviewed_commit_in_range_denied_on_production if {
	direct := {"revision": "ddddddd4444", "category": "unreviewed", "pull_request": null, "approvals": [], "changes_requested": []}
	top := object.union(change("normal", ["bob"]), {"category": "unreviewed", "commits": [change("normal", ["bob"]), direct]})
	approvals.deny == {"commit ddddddd: unreviewed change (no pull request) may not reach production cluster prod-primary"} with input as {"cluster": prod, "change": top}
}
