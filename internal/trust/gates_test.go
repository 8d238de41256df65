package trust_test

import (
	"strings"
	"testing"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/trust"
)

// gatesFleet is a fleet whose canary wave is gated by errors (a template)
// and error-rate (built-in), on the canary's own Prometheus.
const gatesFleet = `apiVersion: convoy.dev/v1alpha1
kind: Fleet
metadata: {name: demo}
spec:
  clusters:
  - {name: canary, environment: staging, path: c, kubeconfig: {context: c}, prometheus: {address: "https://prom.trusted:9090"}}
  - {name: prod, environment: prod, path: p, kubeconfig: {context: p}}
  rollout:
    analysis:
      templates:
      - {name: errors, query: 'sum(rate(errors_total{cluster="{{ .Cluster }}"}[1m]))', condition: "< 1"}
    waves:
    - {name: canary, clusters: [canary], analysis: [errors, error-rate]}
    - {name: main, clusters: [prod]}
`

func parseFleet(t *testing.T, y string) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Parse("fleet.yaml", []byte(y), "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func names(gates []*fleet.Analysis) string {
	var out []string
	for _, g := range gates {
		out = append(out, g.Name+" "+g.Condition.Text)
	}
	return strings.Join(out, ", ")
}

// TestGatesComeFromTheRules: a change that drops the canary's analyses,
// weakens the template and points the canary at another Prometheus is
// still gated by the rules' analyses, conditions and Prometheus; an
// analysis the change adds gates too.
func TestGatesComeFromTheRules(t *testing.T) {
	rules := &trust.Rules{Origin: trust.OriginBase, Fleet: parseFleet(t, gatesFleet)}
	change := parseFleet(t, strings.NewReplacer(
		`analysis: [errors, error-rate]`, `analysis: [errors]`,
		`condition: "< 1"`, `condition: "< 1000000"`,
		`https://prom.trusted:9090`, `https://prom.attacker:9090`,
		`- {name: main, clusters: [prod]}`, `- {name: main, clusters: [prod], analysis: [latency-p99]}`,
		`kubeconfig: {context: p}}`, `kubeconfig: {context: p}, prometheus: {address: "https://prom.prod:9090"}}`,
	).Replace(gatesFleet))

	gates, prom := rules.Gates(change, change.ClusterByName("canary"))
	if got := names(gates); got != "errors < 1, error-rate < 0.05" {
		t.Errorf("canary gates %q, want the rules' errors (< 1) and error-rate", got)
	}
	if prom == nil || prom.Address != "https://prom.trusted:9090" {
		t.Errorf("canary Prometheus %+v, want the rules' one", prom)
	}
	gates, prom = rules.Gates(change, change.ClusterByName("prod"))
	if got := names(gates); got != "latency-p99 < 5" || prom == nil || prom.Address != "https://prom.prod:9090" {
		t.Errorf("prod gates %q on %+v, want the change's new latency-p99 on the change's Prometheus (the rules name none)", got, prom)
	}
}
