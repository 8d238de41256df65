package render

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"CLUSTER_NAME": "prod-primary", "CLUSTER_REGION": "cn-north", "EMPTY": ""}
	tests := []struct {
		in, want    string
		wantUnknown []string
	}{
		{in: "plain", want: "plain"},
		{in: "${CLUSTER_NAME}", want: "prod-primary"},
		{in: "a-${CLUSTER_NAME}-${CLUSTER_REGION}-b", want: "a-prod-primary-cn-north-b"},
		{in: "x${EMPTY}y", want: "xy"},
		{in: "$${CLUSTER_NAME}", want: "${CLUSTER_NAME}"},
		{in: "$${HOME} and ${CLUSTER_NAME}", want: "${HOME} and prod-primary"},
		{in: "$$${CLUSTER_NAME}", want: "$${CLUSTER_NAME}"},
		{in: "$HOME $ {x} ${", want: "$HOME $ {x} ${"},
		{in: "${CLUSTER_FOO}", want: "${CLUSTER_FOO}", wantUnknown: []string{"CLUSTER_FOO"}},
		{in: "${A} ${CLUSTER_NAME} ${}", want: "${A} prod-primary ${}", wantUnknown: []string{"A", ""}},
	}
	for _, tt := range tests {
		got, unknown := substitute(tt.in, vars)
		if got != tt.want {
			t.Errorf("substitute(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if diff := cmp.Diff(tt.wantUnknown, unknown); diff != "" {
			t.Errorf("substitute(%q) unknown (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestVariables(t *testing.T) {
	c := &fleet.Cluster{
		Name: "prod-edge", Environment: "production", Region: "cn-edge", Wave: "secondary",
		Labels: map[string]string{"tier": "edge", "topology.example.com/zone-id": "z1"},
	}
	want := map[string]string{
		"CLUSTER_NAME":        "prod-edge",
		"CLUSTER_ENVIRONMENT": "production",
		"CLUSTER_REGION":      "cn-edge",
		"CLUSTER_WAVE":        "secondary",
		"CLUSTER_LABEL_TIER":  "edge",
		"CLUSTER_LABEL_TOPOLOGY_EXAMPLE_COM_ZONE_ID": "z1",
	}
	if diff := cmp.Diff(want, Variables(c)); diff != "" {
		t.Errorf("Variables (-want +got):\n%s", diff)
	}
}

func TestIsRemote(t *testing.T) {
	tests := map[string]bool{
		"https://github.com/org/repo//base?ref=v1": true,
		"HTTP://example.com/cm.yaml":               true,
		"git::https://example.com/org/repo":        true,
		"ssh://git@example.com/org/repo":           true,
		"git@github.com:org/repo.git//base":        true,
		"github.com/org/repo/base?ref=main":        true,
		"file:///etc/kustomize":                    true,
		"../../environments/production":            false,
		"deployment.yaml":                          false,
		"github.com.yaml":                          false,
		"bases/github.com/org/repo/kustomization":  false,
	}
	for ref, want := range tests {
		if got := isRemote(ref); got != want {
			t.Errorf("isRemote(%q) = %v, want %v", ref, got, want)
		}
	}
}

// FuzzSubstitute checks that substitution never panics, leaves strings
// without "${" alone, and only ever shortens escapes or replaces variables.
func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{"${CLUSTER_NAME}", "$${X}", "${", "$$${Y}}", "a${b}c${CLUSTER_NAME}"} {
		f.Add(s)
	}
	vars := map[string]string{"CLUSTER_NAME": "n"}
	f.Fuzz(func(t *testing.T, s string) {
		got, unknown := substitute(s, vars)
		if !strings.Contains(s, "${") && (got != s || unknown != nil) {
			t.Fatalf("substitute(%q) = %q, %q; want it unchanged", s, got, unknown)
		}
		if len(unknown) == 0 && strings.Contains(s, "${CLUSTER_NAME}") && !strings.Contains(s, "$${CLUSTER_NAME}") && strings.Contains(got, "${CLUSTER_NAME}") {
			t.Fatalf("substitute(%q) = %q: known variable left in place", s, got)
		}
	})
}
