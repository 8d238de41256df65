package testenv

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// Requests counts the API server's requests by verb (GET, LIST, WATCH,
// APPLY, PATCH, CREATE, UPDATE, DELETE, …), read from its own
// apiserver_request_total metric, so tests can assert how much a client
// asked for without any client-side instrumentation.
type Requests map[string]int

// Mutating is the number of requests that can change stored state.
func (r Requests) Mutating() int {
	return r["APPLY"] + r["PATCH"] + r["CREATE"] + r["UPDATE"] + r["DELETE"] + r["DELETECOLLECTION"] + r["POST"] + r["PUT"]
}

// Total is the number of requests of every verb.
func (r Requests) Total() int {
	n := 0
	for _, v := range r {
		n += v
	}
	return n
}

// Sub returns r - before, verb by verb, dropping zeros.
func (r Requests) Sub(before Requests) Requests {
	out := Requests{}
	for k, v := range r {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// RequestCounts reads apiserver_request_total. When filter is set, only
// requests whose labels all match it are counted (e.g. {"resource":
// "configmaps"}, {"dry_run": ""}); requests for the resources named in
// exclude (e.g. "leases", "events") are left out. The GET of /metrics itself
// is not a resource request and is not counted.
func (c *Cluster) RequestCounts(ctx context.Context, filter map[string]string, exclude ...string) (Requests, error) {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read metrics of cluster %s: %w", c.Name, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse metrics of cluster %s: %w", c.Name, err)
	}
	out := Requests{}
	fam := families["apiserver_request_total"]
	if fam == nil {
		return out, nil
	}
next:
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["resource"] == "" || slices.Contains(exclude, labels["resource"]) {
			continue // non-resource URLs (/metrics, /healthz, /openapi) or excluded
		}
		for k, v := range filter {
			if labels[k] != v {
				continue next
			}
		}
		out[labels["verb"]] += int(m.GetCounter().GetValue())
	}
	return out, nil
}
