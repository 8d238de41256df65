package deploytest_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/convoy-gitops/convoy/internal/agent"
)

// TestChartConfigParsesAsAgentConfig feeds the config file the chart renders
// for each case to the agent's own strict parser: the chart and the agent
// agree on every field name and on which fields go together.
func TestChartConfigParsesAsAgentConfig(t *testing.T) {
	c := loadChart(t)
	for _, tc := range chartCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, c, "convoy-system", tc.values)
			cm := r.one(t, "ConfigMap")
			data, _, err := unstructured.NestedString(cm.Object, "data", "config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := agent.ParseConfig("/etc/convoy/config.yaml", []byte(data))
			if err != nil {
				t.Fatalf("the agent rejects the chart's config:\n%v\n%s", err, data)
			}
			if cfg.LeaderElection.Namespace != "convoy-system" {
				t.Errorf("leader election namespace %q, want the release namespace", cfg.LeaderElection.Namespace)
			}
		})
	}
}
