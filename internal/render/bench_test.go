package render_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/render"
)

// BenchmarkRenderFixtureFleet renders the five clusters of fixtures/fleet.
func BenchmarkRenderFixtureFleet(b *testing.B) {
	f := loadFixtureFleet(b)
	var r render.Renderer
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.All(context.Background(), fixtureFleet, f, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderGenerated renders a generated repository: 20 cluster
// overlays over one shared base of 10 applications (5 objects each) and 4
// region components that add a ConfigMap and patch replicas, 1,020 objects
// in all.
func BenchmarkRenderGenerated(b *testing.B) {
	repo, f := generatedRepo(b, 20, 10)
	// serial renders one cluster at a time, as a lock around krusty would.
	for _, bc := range []struct {
		name        string
		parallelism int
	}{{"parallel", 0}, {"serial", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			r := render.Renderer{Parallelism: bc.parallelism}
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				res, err := r.All(context.Background(), repo, f, nil)
				if err != nil {
					b.Fatal(err)
				}
				n = 0
				for _, x := range res {
					n += len(x.Objects)
				}
			}
			b.ReportMetric(float64(n), "objects/op")
		})
	}
}

// generatedRepo writes a deterministic config repository with clusters
// cluster overlays over a base of apps applications.
func generatedRepo(tb testing.TB, clusters, apps int) (string, *fleet.Fleet) {
	files := map[string]string{}
	var base []string
	for a := range apps {
		name := fmt.Sprintf("app-%02d", a)
		base = append(base, name+".yaml")
		files["base/"+name+".yaml"] = strings.Join([]string{
			fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: %s\n", name),
			fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  cluster: ${CLUSTER_NAME}\n  app: %s\n", name, name),
			fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  selector: {app: %s}\n  ports:\n  - {port: 80, targetPort: 8080}\n", name, name),
			fmt.Sprintf("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: %s\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels: {app: %s}\n", name, name),
			fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: 2
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      serviceAccountName: %[1]s
      containers:
      - name: app
        image: registry.example.com/%[1]s:1.0.0
        env:
        - {name: REGION, value: "${CLUSTER_REGION}"}
        resources:
          requests: {cpu: 100m, memory: 128Mi}
`, name),
		}, "---\n")
	}
	files["base/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: apps\nlabels:\n- pairs: {team: platform}\nresources:\n- " + strings.Join(base, "\n- ") + "\n"
	for r := range 4 {
		files[fmt.Sprintf("regions/r%d/kustomization.yaml", r)] = fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
labels:
- pairs: {region: r%[1]d}
resources: [region.yaml]
replicas:
- {name: app-00, count: %[2]d}
`, r, r+1)
		files[fmt.Sprintf("regions/r%d/region.yaml", r)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: region\n  namespace: apps\ndata:\n  region: r%d\n  wave: ${CLUSTER_WAVE}\n", r)
	}
	f := &fleet.Fleet{Name: "generated"}
	for c := range clusters {
		name := fmt.Sprintf("c%02d", c)
		files["clusters/"+name+"/kustomization.yaml"] = fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../../base]
components: [../../regions/r%d]
images:
- {name: registry.example.com/app-01, newTag: "1.0.%d"}
`, c%4, c)
		f.Clusters = append(f.Clusters, fleet.Cluster{
			Name: name, Environment: "production", Region: fmt.Sprintf("r%d", c%4),
			Path: "clusters/" + name, Wave: fmt.Sprintf("w%d", c/5),
		})
	}
	return writeRepo(tb, files), f
}
