package convoy.business_hours_test

import data.convoy.business_hours as bh

prod := {"name": "prod-primary", "environment": "production"}

staging := {"name": "staging", "environment": "staging"}

# at is Wednesday unless said otherwise.
at(weekday, hour, minute) := {"time": "2026-11-25T10:00:00+08:00", "weekday": weekday, "hour": hour, "minute": minute, "timezone": "Asia/Shanghai"}

doc(category, cluster, now) := {"cluster": cluster, "change": {"category": category}, "now": now, "windows": []}

held_msg := "major change to production cluster prod-primary is held during business hours (09:00-18:00 Asia/Shanghai); retry after 18:00"

test_major_held_on_weekday_morning if {
	{m.msg | some m in bh.hold} == {held_msg} with input as doc("major", prod, at(3, 10, 0))
}

test_major_held_at_opening_minute if {
	{m.msg | some m in bh.hold} == {held_msg} with input as doc("major", prod, at(1, 9, 0))
}

test_major_not_held_one_minute_before_opening if {
	count(bh.hold) == 0 with input as doc("major", prod, at(1, 8, 59))
}

test_major_held_last_minute if {
	{m.msg | some m in bh.hold} == {held_msg} with input as doc("major", prod, at(5, 17, 59))
}

test_major_not_held_at_closing if {
	count(bh.hold) == 0 with input as doc("major", prod, at(5, 18, 0))
}

test_major_not_held_on_saturday if {
	count(bh.hold) == 0 with input as doc("major", prod, at(6, 10, 0))
}

test_major_not_held_on_sunday if {
	count(bh.hold) == 0 with input as doc("major", prod, at(0, 12, 0))
}

test_normal_not_held_in_business_hours if {
	count(bh.hold) == 0 with input as doc("normal", prod, at(3, 10, 0))
}

test_major_not_held_on_staging if {
	count(bh.hold) == 0 with input as doc("major", staging, at(3, 10, 0))
}

test_configured_days_and_hours if {
	cfg := {"businessHours": {"days": [0, 6], "start": "08:30", "end": "12:00"}}
	count(bh.hold) == 1 with input as doc("major", prod, at(6, 8, 30)) with data.convoy.config as cfg
	count(bh.hold) == 0 with input as doc("major", prod, at(6, 8, 29)) with data.convoy.config as cfg
	count(bh.hold) == 0 with input as doc("major", prod, at(3, 10, 0)) with data.convoy.config as cfg
}

test_partial_config_keeps_default_days if {
	cfg := {"businessHours": {"start": "10:00"}}
	count(bh.hold) == 0 with input as doc("major", prod, at(3, 9, 30)) with data.convoy.config as cfg
	count(bh.hold) == 1 with input as doc("major", prod, at(3, 10, 0)) with data.convoy.config as cfg
}

test_hours_across_midnight if {
	# A night shift Mon-Fri 22:00-06:00: Friday 23:00 and Saturday 05:59 are
	# business hours, Monday 05:00 is not (Sunday night is no business day).
	cfg := {"businessHours": {"days": [1, 2, 3, 4, 5], "start": "22:00", "end": "06:00"}}
	count(bh.hold) == 1 with input as doc("major", prod, at(5, 23, 0)) with data.convoy.config as cfg
	count(bh.hold) == 1 with input as doc("major", prod, at(6, 5, 59)) with data.convoy.config as cfg
	count(bh.hold) == 0 with input as doc("major", prod, at(6, 6, 0)) with data.convoy.config as cfg
	count(bh.hold) == 0 with input as doc("major", prod, at(1, 5, 0)) with data.convoy.config as cfg
	count(bh.hold) == 0 with input as doc("major", prod, at(3, 12, 0)) with data.convoy.config as cfg
}

test_invalid_config_denies if {
	cfg := {"businessHours": {"start": "9am"}}
	count(bh.deny) == 1 with input as doc("major", prod, at(3, 10, 0)) with data.convoy.config as cfg
}

window := {
	"name": "freeze", "kind": "deny", "active": true, "until": "2026-11-25T18:00:00+08:00",
	"environments": ["production"], "allowCategories": ["emergency"],
}

win_in(category, cluster, windows) := {"cluster": cluster, "change": {"category": category}, "now": at(6, 3, 0), "windows": windows}

test_active_window_holds_normal_change if {
	{m.msg | some m in bh.hold} == {"window freeze holds normal changes on production cluster prod-primary until 2026-11-25T18:00:00+08:00"} with input as win_in("normal", prod, [window])
}

test_active_window_allows_emergency if {
	count(bh.hold) == 0 with input as win_in("emergency", prod, [window])
}

test_inactive_window_holds_nothing if {
	count(bh.hold) == 0 with input as win_in("normal", prod, [object.union(window, {"active": false, "until": ""})])
}

test_window_other_environment_holds_nothing if {
	count(bh.hold) == 0 with input as win_in("normal", staging, [window])
}

test_window_without_environments_holds_everywhere if {
	w := object.union(window, {"environments": [], "allowCategories": null})
	count(bh.hold) == 1 with input as win_in("emergency", staging, [w])
}

test_two_windows_two_holds if {
	w2 := object.union(window, {"name": "release-freeze"})
	count(bh.hold) == 2 with input as win_in("standard", prod, [window, w2])
}

test_business_hours_hold_says_until_the_end_of_the_day if {
	{m.until | some m in bh.hold} == {"2026-11-25T18:00:00+08:00"} with input as doc("major", prod, at(3, 10, 0))
}

test_business_hours_hold_across_midnight_lasts_until_the_next_morning if {
	cfg := {"businessHours": {"days": [5], "start": "22:00", "end": "06:00"}}
	now := {"time": "2026-11-27T23:30:15+08:00", "weekday": 5, "hour": 23, "minute": 30, "timezone": "Asia/Shanghai"}
	{m.until | some m in bh.hold} == {"2026-11-28T06:00:00+08:00"} with input as doc("major", prod, now) with data.convoy.config as cfg
}

test_window_hold_says_until_the_window_end if {
	{m.until | some m in bh.hold} == {"2026-11-25T18:00:00+08:00"} with input as win_in("normal", prod, [window])
}

test_major_commit_in_range_holds_a_standard_target if {
	c := {"category": "standard", "commits": [{"category": "standard"}, {"category": "major"}]}
	{m.msg | some m in bh.hold} == {held_msg} with input as {"cluster": prod, "change": c, "now": at(3, 10, 0), "windows": []}
}

test_window_holds_each_category_it_does_not_allow if {
	w := {"name": "freeze", "kind": "deny", "active": true, "until": "2026-11-25T18:00:00+08:00", "environments": [], "allowCategories": ["emergency"]}
	c := {"category": "normal", "commits": [{"category": "emergency"}, {"category": "normal"}]}
	{m.msg | some m in bh.hold} == {"window freeze holds normal changes on production cluster prod-primary until 2026-11-25T18:00:00+08:00"} with input as {"cluster": prod, "change": c, "now": at(6, 10, 0), "windows": [w]}
}
