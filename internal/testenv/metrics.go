package testenv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

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
	rows, err := c.RequestTotals(ctx)
	if err != nil {
		return nil, err
	}
	out := Requests{}
next:
	for _, r := range rows {
		if r.Labels["resource"] == "" || slices.Contains(exclude, r.Labels["resource"]) {
			continue
		}
		for k, v := range filter {
			if r.Labels[k] != v {
				continue next
			}
		}
		out[r.Labels["verb"]] += r.N
	}
	return out, nil
}

// DiscoveryRequests counts the API discovery requests (GET /api, /apis and
// the group and version documents under them) the API server has served,
// from apiserver_request_total, which records a non-resource request with
// an empty resource and its path as the subresource.
func (c *Cluster) DiscoveryRequests(ctx context.Context) (int, error) {
	rows, err := c.RequestTotals(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		path := strings.TrimPrefix(r.Labels["subresource"], "/")
		if r.Labels["resource"] == "" && (path == "api" || path == "apis" || strings.HasPrefix(path, "api/") || strings.HasPrefix(path, "apis/")) {
			n += r.N
		}
	}
	return n, nil
}

// RequestTotal is one series of apiserver_request_total: its labels
// (verb, resource, subresource, dry_run, code, …) and its count.
type RequestTotal struct {
	Labels map[string]string
	N      int
}

// RequestTotals reads every series of the API server's
// apiserver_request_total. It scans /metrics for that family's lines
// only: parsing the whole exposition takes over a second under the race
// detector, and suites read it before and after every case.
func (c *Cluster) RequestTotals(ctx context.Context) ([]RequestTotal, error) {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read metrics of cluster %s: %w", c.Name, err)
	}
	var rows []RequestTotal
	for line := range strings.Lines(string(raw)) {
		rest, ok := strings.CutPrefix(line, "apiserver_request_total{")
		if !ok {
			continue
		}
		labels, rest, err := parseLabels(rest)
		if err != nil {
			return nil, fmt.Errorf("metrics of cluster %s: %q: %w", c.Name, strings.TrimSpace(line), err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return nil, fmt.Errorf("metrics of cluster %s: %q: %w", c.Name, strings.TrimSpace(line), err)
		}
		rows = append(rows, RequestTotal{Labels: labels, N: int(v)})
	}
	return rows, nil
}

// parseLabels reads the label pairs of an exposition line after its "{",
// up to and including the closing "}", and returns what follows.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, ", ")
		if rest, ok := strings.CutPrefix(s, "}"); ok {
			return labels, rest, nil
		}
		name, rest, ok := strings.Cut(s, `="`)
		if !ok {
			return nil, "", errors.New("unreadable labels")
		}
		var v strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 'n':
					v.WriteByte('\n')
					continue
				}
			}
			v.WriteByte(rest[i])
		}
		if i == len(rest) {
			return nil, "", errors.New("unterminated label value")
		}
		labels[name] = v.String()
		s = rest[i+1:]
	}
}
