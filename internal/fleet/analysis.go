package fleet

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// Defaults of an analysis template.
const (
	DefaultAnalysisInterval = 10 * time.Second
	// InconclusiveHold holds the rollout when a measurement has no value
	// (an empty result, Prometheus out of reach): the default.
	InconclusiveHold = "hold"
	// InconclusiveFail counts such a measurement as failed.
	InconclusiveFail = "fail"
)

// Analysis is a named check of a cluster's metrics that gates a wave: a
// PromQL query, measured every Interval after the cluster is healthy and
// through the wave's bake, whose value must meet Condition.
type Analysis struct {
	Name  string
	Query string // a text/template over QueryData, PromQL once executed
	// Condition is what a measured value must meet, as written ("< 0.05").
	Condition Condition
	Interval  time.Duration
	// Count is the number of measurements; 0 measures through the bake.
	Count int
	// FailureLimit is how many failed measurements are tolerated.
	FailureLimit int
	// ConsecutiveSuccesses the analysis needs to pass; at least 1.
	ConsecutiveSuccesses int
	// Inconclusive says what a measurement without a value means:
	// InconclusiveHold (never a success) or InconclusiveFail.
	Inconclusive string
	Builtin      bool // one of Builtins, not written in fleet.yaml

	tmpl     *template.Template
	path     string // of its query in fleet.yaml; "" for a built-in
	reported bool   // a problem of its query was reported
}

// Prometheus is where a cluster's metrics are queried.
type Prometheus struct {
	Address         string // http(s)://host:port
	BearerTokenFile string
	CAFile          string
}

// QueryData is what an analysis query may use.
type QueryData struct {
	Cluster, Region, Environment, Wave, Revision string
	Labels                                       map[string]string
}

// Render executes the query template for one cluster and revision.
func (a *Analysis) Render(d QueryData) (string, error) {
	var b bytes.Buffer
	if err := a.tmpl.Execute(&b, d); err != nil {
		return "", fmt.Errorf("analysis %s: %w", a.Name, err)
	}
	return b.String(), nil
}

// Builtins are the analyses every fleet may name without defining them:
// the operations model's failover triggers, over conventional metric names
// (http_requests_total with a code label, http_request_duration_seconds
// histograms, up), each selected by a cluster label equal to the cluster's
// name.
var Builtins = map[string]Analysis{
	"error-rate": {
		Query:     `sum(rate(http_requests_total{cluster="{{ .Cluster }}",code=~"5.."}[1m])) / sum(rate(http_requests_total{cluster="{{ .Cluster }}"}[1m]))`,
		Condition: mustCondition("< 0.05"),
	},
	"latency-p99": {
		Query:     `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{cluster="{{ .Cluster }}"}[1m])))`,
		Condition: mustCondition("< 5"),
	},
	"healthy-ratio": {
		Query:     `avg(up{cluster="{{ .Cluster }}"})`,
		Condition: mustCondition(">= 0.5"),
	},
}

// The built-ins' queries are parsed once.
func init() {
	for name, a := range Builtins {
		a.tmpl = template.Must(template.New(name).Option("missingkey=error").Parse(a.Query))
		Builtins[name] = a
	}
}

// Condition is a test of a measured value: one or more comparisons with a
// number, all of which must hold ("< 0.05", ">= 0.5", "> 0 && < 0.05").
type Condition struct {
	Text  string
	terms []term
}

type term struct {
	op    string
	value float64
}

var ops = []string{"<=", ">=", "==", "!=", "<", ">"} // two-character operators first

// ParseCondition parses a condition.
func ParseCondition(s string) (Condition, error) {
	c := Condition{Text: strings.TrimSpace(s)}
	if c.Text == "" {
		return c, fmt.Errorf("empty, expected a comparison such as \"< 0.05\"")
	}
	for _, part := range strings.Split(c.Text, "&&") {
		part = strings.TrimSpace(part)
		var t term
		for _, op := range ops {
			if rest, ok := strings.CutPrefix(part, op); ok {
				t.op = op
				v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
				if err != nil {
					return c, fmt.Errorf("%q is not a comparison with a number, expected e.g. \"< 0.05\" or \">= 0.5\"", part)
				}
				t.value = v
				break
			}
		}
		if t.op == "" {
			return c, fmt.Errorf("%q is not a comparison, expected one of %s followed by a number", part, strings.Join(ops, ", "))
		}
		c.terms = append(c.terms, t)
	}
	return c, nil
}

func mustCondition(s string) Condition {
	c, err := ParseCondition(s)
	if err != nil {
		panic(err)
	}
	return c
}

// Met reports whether v meets the condition.
func (c Condition) Met(v float64) bool {
	for _, t := range c.terms {
		ok := false
		switch t.op {
		case "<":
			ok = v < t.value
		case "<=":
			ok = v <= t.value
		case ">":
			ok = v > t.value
		case ">=":
			ok = v >= t.value
		case "==":
			ok = v == t.value
		case "!=":
			ok = v != t.value
		}
		if !ok {
			return false
		}
	}
	return len(c.terms) > 0
}

var promql = parser.NewParser(parser.Options{})

// analyses checks spec.rollout.analysis.templates and returns them by
// name with the built-ins (a template of fleet.yaml may not take a
// built-in's name).
func (s *spec) analyses(af analysisFile) map[string]*Analysis {
	out := map[string]*Analysis{}
	for name, b := range Builtins {
		a := b
		a.Name, a.Builtin = name, true
		withDefaults(&a)
		out[name] = &a
	}
	const p = "spec.rollout.analysis.templates"
	for i := range af.Templates {
		tf, ip := &af.Templates[i], index(p, i)
		a := &Analysis{
			path:                 ip + ".query",
			Name:                 s.required(ip+".name", tf.Name),
			Query:                s.required(ip+".query", tf.Query),
			Interval:             tf.Interval.Duration,
			Count:                tf.Count,
			FailureLimit:         tf.FailureLimit,
			ConsecutiveSuccesses: tf.ConsecutiveSuccesses,
			Inconclusive:         tf.Inconclusive,
		}
		if prev, ok := out[a.Name]; ok && a.Name != "" {
			if prev.Builtin {
				s.addf(ip+".name", "%q is a built-in analysis, name yours otherwise", a.Name)
			} else {
				s.addf(ip+".name", "duplicate analysis name %q", a.Name)
			}
			continue
		}
		switch c, err := ParseCondition(tf.Condition); {
		case s.doc.Failed(ip + ".condition"):
		case err != nil:
			s.addf(ip+".condition", "%v", err)
		default:
			a.Condition = c
		}
		if a.Query != "" {
			t, err := template.New(a.Name).Option("missingkey=error").Parse(a.Query)
			if err != nil {
				s.addf(ip+".query", "%v", err)
			} else {
				a.tmpl = t
			}
		}
		for _, f := range []struct {
			name string
			v    int
		}{{"count", a.Count}, {"failureLimit", a.FailureLimit}, {"consecutiveSuccesses", a.ConsecutiveSuccesses}} {
			if f.v < 0 {
				s.addf(ip+"."+f.name, "must be 0 or more, got %d", f.v)
			}
		}
		switch a.Inconclusive {
		case "", InconclusiveHold, InconclusiveFail:
		default:
			s.addf(ip+".inconclusive", "%q is not a choice, expected %q (the default) or %q", a.Inconclusive, InconclusiveHold, InconclusiveFail)
		}
		withDefaults(a)
		if a.Name != "" {
			out[a.Name] = a
		}
	}
	return out
}

// withDefaults fills the fields an analysis left unset.
func withDefaults(a *Analysis) {
	if a.Interval == 0 {
		a.Interval = DefaultAnalysisInterval
	}
	if a.ConsecutiveSuccesses == 0 {
		a.ConsecutiveSuccesses = 1
	}
	if a.Inconclusive == "" {
		a.Inconclusive = InconclusiveHold
	}
}

// gates resolves the analyses named at path for each cluster of a wave:
// the names must be known, the query must render for the cluster and
// parse as PromQL, and the cluster must have a Prometheus to ask.
func (s *spec) gates(path string, names []string, known map[string]*Analysis, clusters []*Cluster, wave string) []string {
	var out []string
	for j, name := range names {
		np := index(path, j)
		a, ok := known[name]
		if !ok {
			s.addf(np, "unknown analysis %q, expected one of %s", name, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
			continue
		}
		out = append(out, name)
		if a.tmpl == nil {
			continue // its query has a problem of its own
		}
		for _, c := range clusters {
			if c.Prometheus == nil {
				if !s.noPrometheus[c.Name] {
					s.noPrometheus[c.Name] = true
					s.addf(np, "cluster %q has no Prometheus to measure %q: set its prometheus or spec.rollout.analysis.prometheus for region %q", c.Name, name, c.Region)
				}
				continue
			}
			q, err := a.Render(QueryData{Cluster: c.Name, Region: c.Region, Environment: c.Environment, Wave: wave, Revision: "0000000000000000000000000000000000000000", Labels: c.Labels})
			if err == nil {
				_, err = promql.ParseExpr(q)
			}
			if err != nil && !a.reported {
				a.reported = true
				at := a.path
				if a.Builtin {
					at = np
				}
				s.addf(at, "for cluster %q: %v", c.Name, err)
			}
		}
	}
	return out
}

// analysis checks what gates the waves: the templates, each cluster's
// Prometheus, and the analyses waves and clusters name.
func (s *spec) analysis(sp *specFile, r *Rollout) {
	af := sp.Rollout.Analysis
	r.Analyses = s.analyses(af)
	byRegion := map[string]*Prometheus{}
	for _, region := range s.doc.Keys("spec.rollout.analysis.prometheus") {
		if p := s.prometheus(child("spec.rollout.analysis.prometheus", region), af.Prometheus[region]); p != nil {
			byRegion[region] = p
		}
	}
	// s.clusters and r.Waves hold one entry per item of the file.
	for i := range sp.Clusters {
		c, cf := &s.clusters[i], &sp.Clusters[i]
		if cf.Prometheus != nil {
			c.Prometheus = s.prometheus(index("spec.clusters", i)+".prometheus", *cf.Prometheus)
		} else {
			c.Prometheus = byRegion[c.Region]
		}
	}
	for i := range sp.Rollout.Waves {
		w := &r.Waves[i]
		var members []*Cluster
		for _, name := range w.Clusters {
			if ci, ok := s.byName[name]; ok {
				members = append(members, &s.clusters[ci])
			}
		}
		w.Analysis = s.gates(index("spec.rollout.waves", i)+".analysis", sp.Rollout.Waves[i].Analysis, r.Analyses, members, w.Name)
	}
	for i := range sp.Clusters {
		c := &s.clusters[i]
		c.Analysis = s.gates(index("spec.clusters", i)+".analysis", sp.Clusters[i].Analysis, r.Analyses, []*Cluster{c}, c.Wave)
	}
	// The fleet keeps its own templates and the built-ins it names.
	used := map[string]bool{}
	for _, w := range r.Waves {
		for _, n := range w.Analysis {
			used[n] = true
		}
	}
	for _, c := range s.clusters {
		for _, n := range c.Analysis {
			used[n] = true
		}
	}
	maps.DeleteFunc(r.Analyses, func(name string, a *Analysis) bool { return a.Builtin && !used[name] })
	if len(r.Analyses) == 0 {
		r.Analyses = nil
	}
}

// prometheus checks a Prometheus's address.
func (s *spec) prometheus(path string, pf prometheusFile) *Prometheus {
	ap := path + ".address"
	addr := s.required(ap, pf.Address)
	if addr == "" {
		return nil
	}
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		s.addf(ap, "%q is not an http(s) URL, expected e.g. http://prometheus.monitoring:9090", addr)
		return nil
	}
	return &Prometheus{Address: strings.TrimRight(addr, "/"), BearerTokenFile: pf.BearerTokenFile, CAFile: pf.CAFile}
}
