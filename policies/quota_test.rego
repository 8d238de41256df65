package convoy.quota_test

import data.convoy.quota

cluster(capacity) := {"name": "prod-primary", "environment": "production", "capacity": capacity}

deployment(name, replicas, containers) := {
	"apiVersion": "apps/v1", "kind": "Deployment",
	"metadata": {"name": name, "namespace": "web"},
	"spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}},
}

container(name, requests) := {"name": name, "resources": {"requests": requests}}

test_quantities_parse_as_kubernetes_does if {
	quota.millis("100m") == 100
	quota.millis("1.5") == 1500
	quota.millis(".5") == 500
	quota.millis("200Gi") == 214748364800000
	quota.millis("1.5Gi") == 1610612736000
	quota.millis("1e3") == 1000000
	quota.millis("1E3") == 1000000
	quota.millis("2k") == 2000000
	quota.millis("1M") == 1000000000
	quota.millis("1E") == 1000000000000000000000
	quota.millis("1Ei") == 1152921504606846976000
	quota.millis(2) == 2000
	quota.millis(0.25) == 250
}

test_sub_milli_quantities_round_up if {
	quota.millis("0.5m") == 1
	quota.millis("1n") == 1
	quota.millis("1e-4") == 1
	quota.millis("0") == 0
	quota.millis("123456789.1234") == 123456789124
}

test_signed_quantities_and_exponents if {
	quota.millis("-1.5") == -1500
	quota.millis("+2") == 2000
	quota.millis("1e+2") == 100000
	quota.millis("1e-2") == 10
	quota.millis("5E-4") == 1
	quota.millis("15e-4") == 2
	quota.millis("0.0001") == 1
	quota.millis("0.000") == 0
	quota.millis("12Ki") == 12288000
	quota.millis("1e40") == 10000000000000000000000000000000000000000000
	not quota.valid("1e41")
	not quota.valid("1e-41")
}

test_shared_shapes_count_every_pod if {
	# Equal pod specs are grouped: each object still counts its own pods.
	objs := [
		deployment("a", 2, [container("app", {"cpu": "1"})]),
		deployment("b", 3, [container("app", {"cpu": "1"})]),
		deployment("c", 1, [container("app", {"cpu": "1"}), {"name": "bare"}]),
	]
	quota.deny == {"cluster prod-primary: cpu requests 6 exceed capacity 5"} with input as {"cluster": cluster({"cpu": "5"}), "objects": objs}
	quota.warn == {"apps/v1/Deployment/web/c: container bare has no resource requests"} with input as {"cluster": cluster({"cpu": "6"}), "objects": objs}
}

test_invalid_quantities_rejected if {
	invalid := {"", "abc", "1.2.3", "1KI", "1e", "1mi", "m", "1 k", "--1", true}
	every q in invalid {
		not quota.valid(q)
	}
}

test_requests_times_replicas_exceed_capacity if {
	objs := [deployment("api", 3, [container("app", {"cpu": "40"})])]
	quota.deny == {"cluster prod-primary: cpu requests 120 exceed capacity 100"} with input as {"cluster": cluster({"cpu": "100"}), "objects": objs}
}

test_requests_fit_exactly if {
	objs := [deployment("api", 4, [container("app", {"cpu": "250m", "memory": "512Mi"})])]
	count(quota.deny) == 0 with input as {"cluster": cluster({"cpu": "1", "memory": "2Gi"}), "objects": objs}
}

test_fractions_sum_exactly if {
	# 0.1 + 0.2 is 0.3: no floating-point excess over the capacity.
	objs := [
		deployment("a", 1, [container("app", {"cpu": "0.1"})]),
		deployment("b", 1, [container("app", {"cpu": "0.2"})]),
	]
	count(quota.deny) == 0 with input as {"cluster": cluster({"cpu": "300m"}), "objects": objs}
}

test_memory_message_uses_binary_units if {
	objs := [deployment("db", 3, [container("app", {"memory": "100Gi"})])]
	quota.deny == {"cluster prod-primary: memory requests 300Gi exceed capacity 200Gi"} with input as {"cluster": cluster({"memory": "200Gi"}), "objects": objs}
}

test_replicas_default_to_one if {
	d := deployment("api", 1, [container("app", {"cpu": "2"})])
	objs := [json.remove(d, ["spec/replicas"])]
	count(quota.deny) == 0 with input as {"cluster": cluster({"cpu": "2"}), "objects": objs}
	count(quota.deny) == 1 with input as {"cluster": cluster({"cpu": "1"}), "objects": objs}
}

test_zero_replicas_request_nothing if {
	objs := [deployment("api", 0, [container("app", {"cpu": "200"})])]
	count(quota.deny) == 0 with input as {"cluster": cluster({"cpu": "1"}), "objects": objs}
}

test_extended_resource_gpu if {
	objs := [deployment("train", 3, [container("app", {"nvidia.com/gpu": "4"})])]
	quota.deny == {"cluster prod-primary: nvidia.com/gpu requests 12 exceed capacity 10"} with input as {"cluster": cluster({"nvidia.com/gpu": "10"}), "objects": objs}
}

test_only_capacity_resources_checked if {
	objs := [deployment("train", 1, [container("app", {"nvidia.com/gpu": "4", "cpu": "1000"})])]
	count(quota.deny) == 0 with input as {"cluster": cluster({"memory": "1Gi"}), "objects": objs}
}

test_statefulset_job_daemonset_pod if {
	tmpl := {"template": {"spec": {"containers": [container("c", {"cpu": "1"})]}}}
	objs := [
		{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"}, "spec": object.union(tmpl, {"replicas": 2})},
		{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": object.union(tmpl, {"parallelism": 3})},
		{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"}, "spec": tmpl},
		{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [container("c", {"cpu": "1"})]}},
		{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"cpu": "1000"}},
	]

	# 2 + 3 + 1 + 1 = 7
	count(quota.deny) == 0 with input as {"cluster": cluster({"cpu": "7"}), "objects": objs}
	quota.deny == {"cluster prod-primary: cpu requests 7 exceed capacity 6"} with input as {"cluster": cluster({"cpu": "6"}), "objects": objs}
}

test_job_parallelism_capped_by_completions if {
	spec := {"parallelism": 5, "completions": 2, "template": {"spec": {"containers": [container("c", {"cpu": "1"})]}}}
	objs := [{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": spec}]
	count(quota.deny) == 0 with input as {"cluster": cluster({"cpu": "2"}), "objects": objs}
}

test_init_container_larger_than_containers if {
	spec := {"initContainers": [container("migrate", {"cpu": "3"})], "containers": [container("a", {"cpu": "1"}), container("b", {"cpu": "1"})]}
	quota.pod_requests(spec) == {"cpu": 3000}
}

test_init_containers_smaller_than_containers if {
	spec := {"initContainers": [container("i1", {"cpu": "1"}), container("i2", {"memory": "1Gi"})], "containers": [container("a", {"cpu": "2", "memory": "512Mi"})]}
	quota.pod_requests(spec) == {"cpu": 2000, "memory": 1073741824000}
}

test_sidecars_add_to_containers if {
	# Sidecar (restartPolicy Always) 1 CPU runs beside the 2-CPU app, and
	# beside the 2.5-CPU init container that starts after it.
	sidecar := object.union(container("proxy", {"cpu": "1"}), {"restartPolicy": "Always"})
	spec := {"initContainers": [sidecar, container("migrate", {"cpu": "2500m"})], "containers": [container("app", {"cpu": "2"})]}
	quota.pod_requests(spec) == {"cpu": 3500}
}

test_limits_default_requests_and_overhead_counts if {
	c := {"name": "app", "resources": {"limits": {"cpu": "2"}, "requests": {"memory": "1Gi"}}}
	spec := {"containers": [c], "overhead": {"cpu": "250m"}}
	quota.pod_requests(spec) == {"cpu": 2250, "memory": 1073741824000}
}

test_resource_quota_over_capacity if {
	rq := {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "team-a", "namespace": "team-a"}, "spec": {"hard": {
		"requests.cpu": "200", "memory": "100Gi", "requests.nvidia.com/gpu": "12", "limits.cpu": "1000", "pods": "100",
	}}}
	quota.deny == {
		"cluster prod-primary: v1/ResourceQuota/team-a/team-a: requests.cpu 200 exceeds capacity 100",
		"cluster prod-primary: v1/ResourceQuota/team-a/team-a: requests.nvidia.com/gpu 12 exceeds capacity 10",
	} with input as {"cluster": cluster({"cpu": "100", "memory": "200Gi", "nvidia.com/gpu": "10"}), "objects": [rq]}
}

test_container_without_requests_warns if {
	objs := [deployment("api", 1, [{"name": "app"}, container("ok", {"cpu": "1"})])]
	quota.warn == {"apps/v1/Deployment/web/api: container app has no resource requests"} with input as {"cluster": cluster({}), "objects": objs}
}

test_invalid_request_denies if {
	objs := [deployment("api", 1, [container("app", {"cpu": "lots"})])]
	quota.deny == {"apps/v1/Deployment/web/api: container app: requests.cpu: invalid quantity lots"} with input as {"cluster": cluster({"cpu": "100"}), "objects": objs}
}

test_invalid_capacity_denies if {
	quota.deny == {"cluster prod-primary: capacity cpu: invalid quantity a lot"} with input as {"cluster": cluster({"cpu": "a lot"}), "objects": []}
}

test_kind_in_other_group_ignored if {
	objs := [object.union(deployment("x", 100, [container("app", {"cpu": "100"})]), {"apiVersion": "example.com/v1"})]
	count(quota.deny) == 0 with input as {"cluster": cluster({"cpu": "1"}), "objects": objs}
}

test_negative_replicas_denied_naming_the_object if {
	objs := [deployment("big", 3, [container("app", {"cpu": "4"})]), deployment("hide", -2, [container("app", {"cpu": "4"})])]
	quota.deny == {"apps/v1/Deployment/web/hide: negative pod count -2 (spec.replicas, spec.parallelism or spec.completions): it would hide requests from the quota"} with input as {"cluster": cluster({"cpu": "100"}), "objects": objs}
}
