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
# (Functions below are else chains rather than several definitions: each
# call then stops at the first that applies, which matters for large renders.)
parts(q) := [m[1], concat("", [m[2], m[3]]), count(m[3]), e, multiplier(m[4])] if {
	is_string(q)
	m := regex.find_all_string_submatch_n(quantity_pattern, q, 1)[0]
	count(m[2]) + count(m[3]) > 0
	e := exponent(m[4])
	e <= 40
	e >= -40
}

exponent(s) := e if e := decimal_exponent[s]

else := 0 if binary_multiplier[s]

else := signed(substring(s, 1, -1)) if regex.match("^[eE]", s)

multiplier(s) := m if m := binary_multiplier[s]

else := 1

signed(s) := 0 - unsigned(substring(s, 1, -1)) if startswith(s, "-")

else := unsigned(substring(s, 1, -1)) if startswith(s, "+")

else := unsigned(s) if regex.match("^[0-9]", s)

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
} else := rounded_up(sprintf("%d", [unsigned(p[1]) * p[4]]), p[2] - (p[3] + 3)) if {
	(p[3] + 3) - p[2] < 0
}

# rounded_up divides the decimal string s by 10^k, rounding up.
rounded_up(s, k) := unsigned(substring(s, 0, count(s) - k)) + carry(substring(s, count(s) - k, -1)) if {
	count(s) > k
} else := 1 if {
	regex.match(`[1-9]`, s)
} else := 0

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

# requested_quantity(c, r) is requested(c)[r] without building requested(c).
requested_quantity(c, r) := q if {
	m := c.resources.requests
	is_object(m)
	q := m[r]
} else := q if {
	m := c.resources.limits
	is_object(m)
	q := m[r]
}

# request(c, r) is what container c requests of resource r in milli-units,
# 0 when it requests none or an invalid quantity (denied below).
request(c, r) := quantity_millis(requested_quantity(c, r)) if requested_quantity(c, r)

else := 0

sidecar(c) if c.restartPolicy == "Always"

# pod_requests(spec) maps each resource to the pod's request in milli-units.
pod_requests(spec) := {r: pod_request(spec, r) |
	names := {n | some c in array.concat(containers(spec), init_containers(spec)); some n, _ in requested(c)} | {n | some n, _ in overhead(spec)}
	some r in names
}

# pod_request(spec, r) is the pod's request of resource r in milli-units: 0
# for a resource none of its containers requests.
pod_request(spec, r) := max(array.concat([regular], steps)) + overhead_of(spec, r) if {
	inits := init_containers(spec)
	regular := sum([request(c, r) | some c in containers(spec)]) + sum([request(c, r) | some c in inits; sidecar(c)])
	steps := [step(inits, i, r) | some i, _ in inits]
}

# step is the request while init container i runs: it plus the sidecars
# started before it, or, for a sidecar, all sidecars up to it.
step(inits, i, r) := sum([request(inits[j], r) | some j, c in inits; j <= i; sidecar(c)]) if sidecar(inits[i])

step(inits, i, r) := request(inits[i], r) + sum([request(c, r) | some j, c in inits; j < i; sidecar(c)]) if not sidecar(inits[i])

overhead(spec) := spec.overhead if is_object(spec.overhead)

else := {}

overhead_of(spec, r) := millis(overhead(spec)[r]) if overhead(spec)[r]

else := 0

# --- Objects grouped by what their pods request -----------------------------

# pod_shape(spec) keeps of a pod spec what pod_request reads: per container
# its requests and limits (objects) and whether it is a sidecar, and the
# overhead. Pods of one shape request the same, and many pods share a shape.
pod_shape(spec) := {
	"containers": [container_shape(c) | some c in containers(spec)],
	"initContainers": [container_shape(c) | some c in init_containers(spec)],
	"overhead": overhead(spec),
}

container_shape(c) := object.union(
	{"resources": {"limits": resource_map(c, "limits"), "requests": resource_map(c, "requests")}},
	{"restartPolicy": "Always"},
) if sidecar(c)

else := {"resources": {"limits": resource_map(c, "limits"), "requests": resource_map(c, "requests")}}

# index_objects(objects) indexes the rendered objects in one pass:
#   "pods": [[shape, [[object index, pods], ...], sum of pods], ...], every
#           object that runs pods, grouped by pod_shape (here one group per
#           object);
#   "resource_quotas": the indexes of the v1 ResourceQuotas;
#   "negative": the indexes of the objects with a negative pod count.
# The policy engine evaluates it with a Go implementation (convoy.quota_index)
# that groups equal shapes together and leaves the result otherwise equal;
# it gives up (is undefined) on anything unusual, and then this one runs.
index_objects(objects) := {
	"pods": [[pod_shape(w[0]), [[i, w[1]]], w[1]] | some i, obj in objects; w := workload(obj)],
	"resource_quotas": [i | some i, obj in objects; obj.apiVersion == "v1"; obj.kind == "ResourceQuota"],
	"negative": [i | some i, obj in objects; w := workload(obj); w[1] < 0],
}

# fast_index is index_objects here and under `opa test`; the engine replaces
# it by convoy.quota_index, which is undefined when it gives up.
fast_index(objects) := index_objects(objects)

indexed := x if x := fast_index(input.objects)

else := index_objects(input.objects)

pod_groups := indexed.pods

resource_quotas := [input.objects[i] | some i in indexed.resource_quotas]

# quantities holds every distinct quantity the containers request or limit.
quantities contains q if {
	some g in pod_groups
	some c in array.concat(g[0].containers, g[0].initContainers)
	some _, m in c.resources
	some _, q in m
}

# parsed maps every valid quantity of the containers to its milli-units, so
# that each distinct quantity string is parsed once, not once per container.
parsed := {q: m | some q in quantities; m := millis(q)}

invalid_quantities := {q | some q in quantities; not valid(q)}

# quantity_millis(q) is millis(q), looked up when q is in the input.
quantity_millis(q) := m if m := parsed[q]

else := millis(q)

# has_invalid and has_unrequested flag the shapes whose objects may have a
# container with an invalid quantity or without requests.
has_invalid(shape) if {
	some c in array.concat(shape.containers, shape.initContainers)
	some _, m in c.resources
	some _, q in m
	q in invalid_quantities
}

has_unrequested(shape) if {
	some c in array.concat(shape.containers, shape.initContainers)
	count(requested(c)) == 0
}

capacity := input.cluster.capacity if is_object(input.cluster.capacity)

else := {}

# totals maps each resource of the capacity to what every pod of every object
# requests of it, in milli-units.
totals := {r: total |
	some r, _ in capacity
	total := sum([n | some g in pod_groups; n := pod_request(g[0], r) * g[2]])
}

# --- Rules -------------------------------------------------------------------

deny contains msg if {
	some r, cap in capacity
	capacity_millis := millis(cap)
	total := totals[r]
	total > capacity_millis
	msg := sprintf("cluster %s: %s requests %s exceed capacity %s", [cluster_name, r, format(r, total), text(cap)])
}

deny contains msg if {
	some r, cap in capacity
	not valid(cap)
	msg := sprintf("cluster %s: capacity %s: invalid quantity %v", [cluster_name, r, cap])
}

deny contains msg if {
	count(invalid_quantities) > 0
	some g in pod_groups
	has_invalid(g[0])
	some member in g[1]
	obj := input.objects[member[0]]
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
	some obj in resource_quotas
	some key, hard in object.get(obj, ["spec", "hard"], {})
	r := quota_resource(key)
	cap := capacity[r]
	millis(hard) > millis(cap)
	msg := sprintf("cluster %s: %s: %s %s exceeds capacity %s", [cluster_name, id(obj), key, text(hard), text(cap)])
}

deny contains msg if {
	some obj in resource_quotas
	some key, hard in object.get(obj, ["spec", "hard"], {})
	quota_resource(key)
	not valid(hard)
	msg := sprintf("%s: spec.hard.%s: invalid quantity %v", [id(obj), key, hard])
}

warn contains msg if {
	some g in pod_groups
	has_unrequested(g[0])
	some member in g[1]
	obj := input.objects[member[0]]
	w := workload(obj)
	some c in array.concat(containers(w[0]), init_containers(w[0]))
	count(requested(c)) == 0
	msg := sprintf("%s: container %s has no resource requests", [id(obj), c.name])
}

deny contains msg if {
	some i in indexed.negative
	obj := input.objects[i]
	msg := sprintf("%s: negative pod count %v (spec.replicas, spec.parallelism or spec.completions): it would hide requests from the quota", [id(obj), workload(obj)[1]])
}
