package rollout_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/policy"
	"github.com/convoy-gitops/convoy/internal/rollout"
)

const protectFleet = `apiVersion: convoy.dev/v1alpha1
kind: Fleet
metadata: {name: shop}
spec:
  clusters:
  - {name: x, environment: staging, path: clusters/x, kubeconfig: {context: x}}
  rollout:
    waves:
    - {name: one, clusters: [x]}
`

// Objects in convoy's own namespaces, or named like its records, or
// granting rights to its namespace, are denied whatever the policies say;
// the operator can lift a namespace's protection.
func TestPlanDeniesConvoysOwnNamespaces(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"fleet.yaml":                    protectFleet,
		"clusters/x/kustomization.yaml": "resources: [objs.yaml]\n",
		"clusters/x/objs.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: convoy-shop, namespace: convoy-system}
data: {record: forged}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: own-the-cluster}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: convoy, namespace: convoy-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: agents}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: convoy-shop, namespace: default}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: fine, namespace: default}
`,
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := fleet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ch := &change.Change{Revision: "r", Category: "standard", Approvals: []change.Approval{{User: "bob", Permission: "write", Type: "User"}}}
	plan := func(p *rollout.Planner) []string {
		t.Helper()
		pl, err := p.Plan(context.Background(), rollout.PlanInput{RepoDir: dir, Revision: "r", Fleet: f, Change: ch, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range pl.Targets[0].Decision.Deny {
			if m.Package == rollout.ProtectedPackage {
				out = append(out, m.Msg)
			}
		}
		if len(out) > 0 && pl.Targets[0].Decision.Verdict != policy.Deny {
			t.Errorf("verdict %s with protection denies", pl.Targets[0].Decision.Verdict)
		}
		return out
	}
	got := strings.Join(plan(&rollout.Planner{Protected: []string{"agents"}}), "\n")
	for _, want := range []string{
		"v1/ConfigMap/convoy-system/convoy-shop: namespace convoy-system is convoy's own",
		"rbac.authorization.k8s.io/v1/ClusterRoleBinding//own-the-cluster: grants to a subject in namespace convoy-system",
		"v1/ConfigMap/agents/settings: namespace agents is convoy's own",
		"v1/ConfigMap/default/convoy-shop: named like convoy's record of fleet shop",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("denies lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "fine") {
		t.Errorf("an ordinary object was denied:\n%s", got)
	}
	got = strings.Join(plan(&rollout.Planner{Protected: []string{"agents"}, AllowNamespaces: []string{"agents"}}), "\n")
	if strings.Contains(got, "agents/settings") {
		t.Errorf("allowed namespace still denied:\n%s", got)
	}
}
