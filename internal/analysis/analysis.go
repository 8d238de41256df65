// Package analysis measures a cluster's metrics against the analyses of
// fleet.yaml: it asks the cluster's Prometheus, judges each value by the
// analysis's condition and decides when an analysis has passed or failed.
// A measurement without a value (an empty result, NaN, Prometheus out of
// reach) is inconclusive: never a success.
package analysis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

// Verdicts of a measurement and of an analysis.
const (
	Pass         = "pass"
	Fail         = "fail"
	Inconclusive = "inconclusive"
	Running      = "running" // an analysis with measurements to go
)

// Measurement is one query of one analysis on one cluster.
type Measurement struct {
	Analysis  string    `json:"analysis"`
	Cluster   string    `json:"cluster"`
	Query     string    `json:"query"`
	Value     *float64  `json:"value,omitempty"` // the worst series' value; nil without one
	Series    int       `json:"series"`          // how many series the query returned
	Condition string    `json:"condition"`
	At        time.Time `json:"at"`
	Verdict   string    `json:"verdict"` // Pass, Fail or Inconclusive
	Reason    string    `json:"reason,omitempty"`
}

func (m Measurement) String() string {
	v := "no value"
	if m.Value != nil {
		v = strconv.FormatFloat(*m.Value, 'g', 4, 64)
	}
	s := fmt.Sprintf("%s on %s: %s (%s %s)", m.Analysis, m.Cluster, m.Verdict, v, m.Condition)
	if m.Reason != "" {
		s += ": " + m.Reason
	}
	return s
}

// Querier asks one Prometheus.
type Querier struct {
	api promv1.API
}

// NewQuerier returns a Querier of p, with its bearer token and CA.
func NewQuerier(p *fleet.Prometheus) (*Querier, error) {
	rt := http.DefaultTransport.(*http.Transport).Clone()
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("prometheus %s: CA: %w", p.Address, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("prometheus %s: CA file %s holds no PEM certificate", p.Address, p.CAFile)
		}
		rt.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var transport http.RoundTripper = rt
	if p.BearerTokenFile != "" {
		transport = &bearer{file: p.BearerTokenFile, next: rt}
	}
	c, err := api.NewClient(api.Config{Address: p.Address, RoundTripper: transport})
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", p.Address, err)
	}
	return &Querier{api: promv1.NewAPI(c)}, nil
}

// bearer adds the token of a file, read at each request (a mounted
// Secret is rotated in place), to every request.
type bearer struct {
	file string
	next http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := os.ReadFile(b.file)
	if err != nil {
		return nil, fmt.Errorf("bearer token: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	return b.next.RoundTrip(r)
}

// Measure runs the analysis's query for the cluster at time at and judges
// its value. A query returning several series passes only when every
// series meets the condition; the value kept is the first that does not.
func (q *Querier) Measure(ctx context.Context, a *fleet.Analysis, data fleet.QueryData, at time.Time) Measurement {
	m := Measurement{Analysis: a.Name, Cluster: data.Cluster, Condition: a.Condition.Text, At: at, Verdict: Inconclusive}
	query, err := a.Render(data)
	if err != nil {
		m.Reason = err.Error()
		return m
	}
	m.Query = query
	val, _, _, err := q.api.Query(ctx, query, at)
	if err != nil {
		m.Reason = "query: " + err.Error()
		return m
	}
	var values []float64
	switch v := val.(type) {
	case model.Vector:
		for _, s := range v {
			values = append(values, float64(s.Value))
		}
	case *model.Scalar:
		values = append(values, float64(v.Value))
	default:
		m.Reason = fmt.Sprintf("the query returned a %s, expected an instant vector or a scalar", val.Type())
		return m
	}
	m.Series = len(values)
	if len(values) == 0 {
		m.Reason = "the query returned no series"
		return m
	}
	m.Verdict = Pass
	for _, v := range values {
		if math.IsNaN(v) {
			m.Value, m.Verdict, m.Reason = &v, Inconclusive, "the value is NaN"
			return m
		}
		if !a.Condition.Met(v) {
			m.Value, m.Verdict = &v, Fail
			return m
		}
	}
	m.Value = &values[0]
	return m
}

// Tally decides an analysis from its measurements so far, oldest first:
// Fail once more than FailureLimit measurements failed (inconclusive ones
// count as failed when the analysis says so), Pass once the last
// ConsecutiveSuccesses passed and, with a Count, Count were taken,
// Inconclusive when the last one had no value, else Running. An analysis
// without a Count measures through the whole bake: its caller goes on
// measuring after a Pass and takes the Tally at the bake's end.
func Tally(a *fleet.Analysis, ms []Measurement) string {
	failed, streak := 0, 0
	for _, m := range ms {
		switch {
		case m.Verdict == Pass:
			streak++
		case m.Verdict == Fail || a.Inconclusive == fleet.InconclusiveFail:
			failed++
			streak = 0
		default:
			streak = 0
		}
	}
	switch {
	case failed > a.FailureLimit:
		return Fail
	case streak >= a.ConsecutiveSuccesses && (a.Count == 0 || len(ms) >= a.Count):
		return Pass
	case len(ms) > 0 && ms[len(ms)-1].Verdict == Inconclusive:
		return Inconclusive
	}
	return Running
}

// Analyzer measures analyses on the clusters' Prometheus servers, keeping
// one Querier per server. The zero value is ready; safe for concurrent use.
type Analyzer struct {
	mu       sync.Mutex
	queriers map[fleet.Prometheus]*Querier
}

// Measure is Querier.Measure on the cluster's Prometheus; a cluster
// without one, or whose Prometheus cannot be set up, is inconclusive.
func (z *Analyzer) Measure(ctx context.Context, c *fleet.Cluster, a *fleet.Analysis, d fleet.QueryData, at time.Time) Measurement {
	if c.Prometheus == nil {
		return Measurement{Analysis: a.Name, Cluster: c.Name, Condition: a.Condition.Text, At: at, Verdict: Inconclusive,
			Reason: "the cluster has no Prometheus"}
	}
	z.mu.Lock()
	q, ok := z.queriers[*c.Prometheus]
	var err error
	if !ok {
		if q, err = NewQuerier(c.Prometheus); err == nil {
			if z.queriers == nil {
				z.queriers = map[fleet.Prometheus]*Querier{}
			}
			z.queriers[*c.Prometheus] = q
		}
	}
	z.mu.Unlock()
	if err != nil {
		return Measurement{Analysis: a.Name, Cluster: c.Name, Condition: a.Condition.Text, At: at, Verdict: Inconclusive, Reason: err.Error()}
	}
	return q.Measure(ctx, a, d, at)
}
