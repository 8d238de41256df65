# Quota: what a cluster's workloads request must fit the cluster's capacity.
#
# Per resource named by input.cluster.capacity, the requests of every pod the
# rendered objects would run are summed: Deployments, StatefulSets and
# ReplicaSets × spec.replicas (default 1), Jobs × spec.parallelism (default 1,
# at most spec.completions), DaemonSets and Pods once. A pod requests what
# Kubernetes computes: max(sum of containers and sidecars, largest init step)
# plus spec.overhead, a container without a request for a resource defaulting
# to its limit. No ResourceQuota may promise more than the capacity. Quantities
# are Kubernetes quantities, summed exactly in milli-units.
package convoy.quota

# cluster_name keeps messages defined when the input lacks a name.
cluster_name := input.cluster.name if is_string(input.cluster.name)

else := "(unnamed)"

# --- Kubernetes quantities -------------------------------------------------

quantity_pattern := `^([+-]?)([0-9]*)(?:\.([0-9]*))?([numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]+)?$`

decimal_exponent := {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

binary_multiplier := {
	"Ki": 1024,
	"Mi": 1048576,
	"Gi": 1073741824,
	"Ti": 1099511627776,
	"Pi": 1125899906842624,
	"Ei": 1152921504606846976,
}

zeros := "000000000000000000000000000000000000000000000000000000000000"

# pow10(n) is 10^n for 0 <= n <= 60, as an exact integer.
pow10(n) := to_number(concat("", ["1", substring(zeros, 0, n)])) if {
	n >= 0
	n <= 60
}

# parts(q) splits a quantity string into [sign, digits, decimals, exponent, multiplier].
parts(q) := [m[1], concat("", [m[2], m[3]]), count(m[3]), exponent(m[4]), multiplier(m[4])] if {
	is_string(q)
	m := regex.find_all_string_submatch_n(quantity_pattern, q, 1)[0]
	count(m[2]) + count(m[3]) > 0
	exponent(m[4]) <= 40
	exponent(m[4]) >= -40
}

exponent(s) := decimal_exponent[s]

exponent(s) := 0 if binary_multiplier[s]

exponent(s) := signed(substring(s, 1, -1)) if regex.match(`^[eE]`, s)

multiplier(s) := binary_multiplier[s]

multiplier(s) := 1 if not binary_multiplier[s]

signed(s) := 0 - unsigned(substring(s, 1, -1)) if startswith(s, "-")

signed(s) := unsigned(substring(s, 1, -1)) if startswith(s, "+")

signed(s) := unsigned(s) if regex.match(`^[0-9]`, s)

unsigned(s) := 0 if trim_left(s, "0") == ""

else := to_number(trim_left(s, "0"))

text(q) := q if is_string(q)

text(q) := sprintf("%v", [q]) if is_number(q)

# valid(q) holds for a Kubernetes quantity: a string like "100m", "1.5Gi",
# "1e3", or a JSON number.
valid(q) if parts(text(q))

# millis(q) is quantity q in milli-units, rounded up as Kubernetes' MilliValue
# does. Undefined for an invalid quantity.
millis(q) := sign(p[0]) * scaled(p) if p := parts(text(q))

sign("-") := -1

sign(s) := 1 if s != "-"

# scaled multiplies the digits by 10^(exponent+3-decimals) and the binary
# multiplier, in integers; a negative power drops digits and rounds up.
scaled(p) := (unsigned(p[1]) * pow10(shift)) * p[4] if {
	shift := (p[3] + 3) - p[2]
	shift >= 0
}

scaled(p) := rounded_up(sprintf("%d", [unsigned(p[1]) * p[4]]), p[2] - (p[3] + 3)) if {
	(p[3] + 3) - p[2] < 0
}

# rounded_up divides the decimal string s by 10^k, rounding up.
rounded_up(s, k) := 0 if {
	count(s) <= k
	not regex.match(`[1-9]`, s)
}

rounded_up(s, k) := 1 if {
	count(s) <= k
	regex.match(`[1-9]`, s)
}

rounded_up(s, k) := unsigned(substring(s, 0, count(s) - k)) + carry(substring(s, count(s) - k, -1)) if count(s) > k

carry(tail) := 1 if regex.match(`[1-9]`, tail)

else := 0

binary_resources := {"memory", "ephemeral-storage", "storage"}

# format renders milli-units for a message: "120", "250m", "1536Mi".
format(r, m) := binary(m / 1000) if {
	is_binary(r)
	m % 1000 == 0
}

format(r, m) := decimal(m) if not is_binary(r)

format(r, m) := decimal(m) if {
	is_binary(r)
	m % 1000 != 0
}

is_binary(r) if r in binary_resources

is_binary(r) if startswith(r, "hugepages-")

decimal(m) := sprintf("%d", [m / 1000]) if m % 1000 == 0

else := sprintf("%dm", [m])

binary_units := [["Ei", 1152921504606846976], ["Pi", 1125899906842624], ["Ti", 1099511627776], ["Gi", 1073741824], ["Mi", 1048576], ["Ki", 1024]]

binary(b) := s if {
	fits := [u | some u in binary_units; b != 0; b % u[1] == 0]
	count(fits) > 0
	s := sprintf("%d%s", [b / fits[0][1], fits[0][0]])
} else := sprintf("%d", [b])

# --- Pods of the rendered objects ------------------------------------------

id(obj) := sprintf("%s/%s/%s/%s", [obj.apiVersion, obj.kind, object.get(obj, ["metadata", "namespace"], ""), object.get(obj, ["metadata", "name"], "")])

replicated := {"Deployment", "StatefulSet", "ReplicaSet"}

count_or(x, _) := x if is_number(x)

count_or(x, d) := d if not is_number(x)

# workload(obj) is [pod spec, pods] for an object that runs pods.
workload(obj) := [obj.spec.template.spec, count_or(object.get(obj.spec, "replicas", null), 1)] if {
	startswith(obj.apiVersion, "apps/")
	obj.kind in replicated
}

workload(obj) := [obj.spec.template.spec, 1] if {
	startswith(obj.apiVersion, "apps/")
	obj.kind == "DaemonSet"
}

workload(obj) := [obj.spec.template.spec, min([parallelism(obj.spec), count_or(object.get(obj.spec, "completions", null), parallelism(obj.spec))])] if {
	startswith(obj.apiVersion, "batch/")
	obj.kind == "Job"
}

workload(obj) := [obj.spec, 1] if {
	obj.apiVersion == "v1"
	obj.kind == "Pod"
}

parallelism(spec) := count_or(object.get(spec, "parallelism", null), 1)

list(x) := x if is_array(x)

else := []

containers(spec) := list(object.get(spec, "containers", []))

init_containers(spec) := list(object.get(spec, "initContainers", []))

resource_map(c, key) := m if {
	m := c.resources[key]
	is_object(m)
} else := {}

# requested(c) is what a container requests: its requests, defaulted per
# resource from its limits as the API server does.
requested(c) := object.union(resource_map(c, "limits"), resource_map(c, "requests"))

request(c, r) := millis(requested(c)[r]) if requested(c)[r]

else := 0

sidecar(c) if c.restartPolicy == "Always"

# pod_requests(spec) maps each resource to the pod's request in milli-units.
pod_requests(spec) := {r: total |
	inits := init_containers(spec)
	names := {n | some c in array.concat(containers(spec), inits); some n, _ in requested(c)} | {n | some n, _ in overhead(spec)}
	some r in names
	regular := sum([request(c, r) | some c in containers(spec)]) + sum([request(c, r) | some c in inits; sidecar(c)])
	steps := [step(inits, i, r) | some i, _ in inits]
	total := max(array.concat([regular], steps)) + overhead_of(spec, r)
}

# step is the request while init container i runs: it plus the sidecars
# started before it, or, for a sidecar, all sidecars up to it.
step(inits, i, r) := sum([request(inits[j], r) | some j, c in inits; j <= i; sidecar(c)]) if sidecar(inits[i])

step(inits, i, r) := request(inits[i], r) + sum([request(c, r) | some j, c in inits; j < i; sidecar(c)]) if not sidecar(inits[i])

overhead(spec) := spec.overhead if is_object(spec.overhead)

else := {}

overhead_of(spec, r) := millis(overhead(spec)[r]) if overhead(spec)[r]

else := 0

# requests lists [resource, milli-units] of every pod every object runs.
requests := [[r, m * w[1]] |
	some obj in input.objects
	w := workload(obj)
	some r, m in pod_requests(w[0])
]

capacity := input.cluster.capacity if is_object(input.cluster.capacity)

else := {}

# --- Rules -------------------------------------------------------------------

deny contains msg if {
	some r, cap in capacity
	capacity_millis := millis(cap)
	total := sum([m | some x in requests; x[0] == r; m := x[1]])
	total > capacity_millis
	msg := sprintf("cluster %s: %s requests %s exceed capacity %s", [cluster_name, r, format(r, total), text(cap)])
}

deny contains msg if {
	some r, cap in capacity
	not valid(cap)
	msg := sprintf("cluster %s: capacity %s: invalid quantity %v", [cluster_name, r, cap])
}

deny contains msg if {
	some obj in input.objects
	w := workload(obj)
	some c in array.concat(containers(w[0]), init_containers(w[0]))
	some key in ["requests", "limits"]
	some r, q in resource_map(c, key)
	not valid(q)
	msg := sprintf("%s: container %s: %s.%s: invalid quantity %v", [id(obj), c.name, key, r, q])
}

# quota_resource maps a ResourceQuota spec.hard key to the resource it bounds.
quota_resource(key) := substring(key, count("requests."), -1) if startswith(key, "requests.")

quota_resource(key) := key if key in {"cpu", "memory", "ephemeral-storage"}

deny contains msg if {
	some obj in input.objects
	obj.apiVersion == "v1"
	obj.kind == "ResourceQuota"
	some key, hard in object.get(obj, ["spec", "hard"], {})
	r := quota_resource(key)
	cap := capacity[r]
	millis(hard) > millis(cap)
	msg := sprintf("cluster %s: %s: %s %s exceeds capacity %s", [cluster_name, id(obj), key, text(hard), text(cap)])
}

deny contains msg if {
	some obj in input.objects
	obj.apiVersion == "v1"
	obj.kind == "ResourceQuota"
	some key, hard in object.get(obj, ["spec", "hard"], {})
	quota_resource(key)
	not valid(hard)
	msg := sprintf("%s: spec.hard.%s: invalid quantity %v", [id(obj), key, hard])
}

warn contains msg if {
	some obj in input.objects
	w := workload(obj)
	some c in array.concat(containers(w[0]), init_containers(w[0]))
	count(requested(c)) == 0
	msg := sprintf("%s: container %s has no resource requests", [id(obj), c.name])
}
