# Business hours and deny windows: holds that lift by themselves.
#
# A rollout that carries a major change to production is held during business hours
# (data.convoy.config.businessHours {days, start, end}; default Mon-Fri
# 09:00-18:00, days 0=Sunday..6, in the fleet's zone like input.now). An end
# before the start spans midnight and belongs to the day it starts on. Every
# active deny window of input.windows holds the changes on its environments
# (none listed: all), except the categories it allows: a rollout is held when
# any change it carries is of a category the window does not allow.
package convoy.business_hours

import data.convoy.lib

# cluster_name keeps messages defined when the input lacks a name.
cluster_name := input.cluster.name if is_string(input.cluster.name)

else := "(unnamed)"

default_hours := {"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}

configured := h if {
	h := data.convoy.config.businessHours
	is_object(h)
} else := {}

hours := object.union(default_hours, configured)

clock_pattern := `^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$`

# minutes returns "HH:MM" as minutes after midnight.
minutes(s) := (digits(parts[0]) * 60) + digits(parts[1]) if {
	parts := split(s, ":")
}

# digits reads a decimal number that may have leading zeros.
digits(s) := 0 if trim_left(s, "0") == ""

else := to_number(trim_left(s, "0"))

now_minutes := (input.now.hour * 60) + input.now.minute

valid_hours if {
	regex.match(clock_pattern, hours.start)
	regex.match(clock_pattern, hours.end)
	is_array(hours.days)
}

# An interval within one day.
in_business_hours if {
	valid_hours
	start := minutes(hours.start)
	end := minutes(hours.end)
	start < end
	input.now.weekday in hours.days
	start <= now_minutes
	now_minutes < end
}

# An interval across midnight: the evening of a business day.
in_business_hours if {
	valid_hours
	start := minutes(hours.start)
	end := minutes(hours.end)
	start > end
	input.now.weekday in hours.days
	start <= now_minutes
}

# An interval across midnight: the early morning after a business day.
in_business_hours if {
	valid_hours
	start := minutes(hours.start)
	end := minutes(hours.end)
	start > end
	((input.now.weekday + 6) % 7) in hours.days
	now_minutes < end
}

deny contains msg if {
	is_object(data.convoy.config.businessHours)
	not valid_hours
	msg := sprintf("data.convoy.config.businessHours is invalid: want days [0-6] and start/end as HH:MM, got %v", [data.convoy.config.businessHours])
}

hold contains {"msg": msg, "until": business_hours_end} if {
	"major" in lib.categories
	input.cluster.environment == "production"
	in_business_hours
	msg := sprintf("major change to production cluster %s is held during business hours (%s-%s %s); retry after %s", [
		cluster_name, hours.start, hours.end, object.get(input.now, "timezone", "local time"), hours.end,
	])
}

# business_hours_end is when the current business hours end, RFC 3339 in
# the fleet's zone: today's end, or tomorrow's for hours across midnight.
# The agent re-evaluates the hold then (a DST change in between moves the
# end by an hour; the agent then holds again until the true end).
business_hours_end := time.format([end_ns, zone, "2006-01-02T15:04:05Z07:00"]) if {
	now_ns := time.parse_rfc3339_ns(input.now.time)
	zone := object.get(input.now, "timezone", "UTC")
	clock := time.clock([now_ns, zone])
	end := minutes(hours.end)
	left := end - now_minutes
	ahead := left + (1440 * to_number(left <= 0))
	end_ns := now_ns + (((ahead * 60) - clock[2]) * 1000000000)
}

else := ""

list(w, key) := w[key] if is_array(w[key])

else := []

applies(w) if count(list(w, "environments")) == 0

applies(w) if input.cluster.environment in list(w, "environments")

hold contains {"msg": msg, "until": object.get(w, "until", "")} if {
	some w in input.windows
	w.kind == "deny"
	w.active == true
	applies(w)
	some category in lib.categories
	not category in list(w, "allowCategories")
	msg := sprintf("window %s holds %s changes on %s cluster %s until %s", [
		w.name, category, input.cluster.environment, cluster_name, object.get(w, "until", ""),
	])
}
