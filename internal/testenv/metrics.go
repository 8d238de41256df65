package testenv

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

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
// exclude (e.g. "leases", "events") are left out. Requests for non-resource
// URLs (discovery, /metrics, /healthz, /openapi) are not counted: see
// DiscoveryRequests.
func (c *Cluster) RequestCounts(ctx context.Context, filter map[string]string, exclude ...string) (Requests, error) {
	rows, err := c.requestTotals(ctx)
	if err != nil {
		return nil, err
	}
	out := Requests{}
next:
	for _, r := range rows {
		if r.labels["resource"] == "" || slices.Contains(exclude, r.labels["resource"]) {
			continue
		}
		for k, v := range filter {
			if r.labels[k] != v {
				continue next
			}
		}
		out[r.labels["verb"]] += r.n
	}
	return out, nil
}

// DiscoveryRequests counts the API discovery requests (GET /api, /apis and
// the group and version documents under them) the API server has served,
// from apiserver_request_total, which records a non-resource request with
// an empty resource and its path as the subresource.
func (c *Cluster) DiscoveryRequests(ctx context.Context) (int, error) {
	rows, err := c.requestTotals(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		path := strings.TrimPrefix(r.labels["subresource"], "/")
		if r.labels["resource"] == "" && (path == "api" || path == "apis" || strings.HasPrefix(path, "api/") || strings.HasPrefix(path, "apis/")) {
			n += r.n
		}
	}
	return n, nil
}

// requestTotal is one series of apiserver_request_total.
type requestTotal struct {
	labels map[string]string
	n      int
}

// requestTotals reads every series of the API server's
// apiserver_request_total.
func (c *Cluster) requestTotals(ctx context.Context) ([]requestTotal, error) {
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
	fam := families["apiserver_request_total"]
	if fam == nil {
		return nil, nil
	}
	rows := make([]requestTotal, 0, len(fam.GetMetric()))
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		rows = append(rows, requestTotal{labels: labels, n: int(m.GetCounter().GetValue())})
	}
	return rows, nil
}
