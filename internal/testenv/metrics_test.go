package testenv

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The label scanner reads what Prometheus's own parser reads, escapes and
// empty values included.
func TestParseLabelsAgreesWithExpfmt(t *testing.T) {
	lines := []string{
		`apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="APPLY",version="v1"} 12`,
		`apiserver_request_total{code="200",component="apiserver",dry_run="All",group="apps",resource="deployments",scope="resource",subresource="status",verb="PATCH",version="v1"} 3`,
		`apiserver_request_total{code="200",resource="",subresource="/apis/apps/v1",verb="GET",odd="a \"quoted\", comma\\ and\nnewline"} 7`,
	}
	page := "# TYPE apiserver_request_total counter\n" + strings.Join(lines, "\n") + "\n"
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	ms := families["apiserver_request_total"].GetMetric()
	for i, line := range lines {
		got, rest, err := parseLabels(strings.TrimPrefix(line, "apiserver_request_total{"))
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		want := map[string]string{}
		for _, l := range ms[i].GetLabel() {
			want[l.GetName()] = l.GetValue()
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("line %d labels (-expfmt +ours):\n%s", i, diff)
		}
		if strings.TrimSpace(rest) != strings.Fields(line)[len(strings.Fields(line))-1] {
			t.Errorf("line %d: value %q", i, rest)
		}
	}
	if _, _, err := parseLabels(`verb="GET`); err == nil {
		t.Error("an unterminated value parsed")
	}
}
