package render_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/render"
)

const fixtureFleet = "../../fixtures/fleet"

// writeRepo creates a config repository from path → content in a temp dir.
func writeRepo(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// kustomization returns a kustomization listing resources.
func kustomization(resources ...string) string {
	return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + strings.Join(resources, "\n- ") + "\n"
}

// configMap returns a ConfigMap whose data.value is value.
func configMap(name, value string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: apps\ndata:\n  value: \"" + value + "\"\n"
}

// testCluster is the cluster "x" at clusters/x.
func testCluster() *fleet.Cluster {
	return &fleet.Cluster{
		Name: "x", Environment: "staging", Region: "r1", Path: "clusters/x", Wave: "canary",
		Labels: map[string]string{"tier": "canary", "example.com/owner": "team-a"},
	}
}

// renderX renders cluster x of repo.
func renderX(t testing.TB, repo string) (*render.Result, error) {
	t.Helper()
	var r render.Renderer
	return r.Cluster(context.Background(), repo, nil, testCluster())
}

// ids returns the objects' IDs in order.
func ids(objs []*unstructured.Unstructured) []string {
	out := make([]string, len(objs))
	for i, u := range objs {
		out[i] = render.ObjectID(u)
	}
	return out
}

// loadFixtureFleet loads fixtures/fleet.
func loadFixtureFleet(t testing.TB) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Load(fixtureFleet)
	if err != nil {
		t.Fatalf("fleet.Load(%s): %v", fixtureFleet, err)
	}
	return f
}

func TestFixtureFleet(t *testing.T) {
	f := loadFixtureFleet(t)
	var r render.Renderer
	results, err := r.All(context.Background(), fixtureFleet, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	common := []string{
		"v1/Namespace//intelligent-environment",
		"v1/ResourceQuota/intelligent-environment/intelligent-environment-quota",
		"v1/ConfigMap/intelligent-environment/region-config",
		"networking.k8s.io/v1/NetworkPolicy/intelligent-environment/resource-scheduler",
		"v1/Service/intelligent-environment/resource-scheduler",
		"apps/v1/Deployment/intelligent-environment/resource-scheduler",
	}
	hpa := "autoscaling/v2/HorizontalPodAutoscaler/intelligent-environment/resource-scheduler"
	pdb := "policy/v1/PodDisruptionBudget/intelligent-environment/resource-scheduler"
	withHPA := append(append([]string{}, common...), hpa, pdb)
	withoutHPA := append(append([]string{}, common...), pdb)
	tests := []struct {
		cluster  string
		replicas int64
		role     string
		ids      []string
	}{
		{"staging", 2, "primary", withHPA},
		{"prod-primary", 5, "primary", withHPA},
		{"prod-secondary", 5, "secondary", withHPA},
		{"prod-edge", 3, "edge", withHPA},
		{"dr", 0, "dr", withoutHPA}, // cold standby: no autoscaler
	}
	if len(results) != len(tests) {
		t.Fatalf("got %d results, want %d", len(results), len(tests))
	}
	for i, tt := range tests {
		res := results[i]
		if res.Cluster != tt.cluster {
			t.Fatalf("result %d is cluster %q, want %q", i, res.Cluster, tt.cluster)
		}
		if diff := cmp.Diff(tt.ids, ids(res.Objects)); diff != "" {
			t.Errorf("%s IDs (-want +got):\n%s", tt.cluster, diff)
		}
		c := f.ClusterByName(tt.cluster)
		for _, u := range res.Objects {
			switch u.GetKind() {
			case "Deployment":
				n, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
				if n != tt.replicas {
					t.Errorf("%s: replicas = %d, want %d", tt.cluster, n, tt.replicas)
				}
				// 2 CPU per replica, and the HPA may reach 15: both fit.
				capacity := c.Capacity["cpu"]
				if max := 15 * 2; int64(max) > capacity.Value() {
					t.Errorf("%s: %d CPU at the HPA maximum exceed the capacity %s", tt.cluster, max, capacity.String())
				}
			case "ConfigMap":
				data, _, _ := unstructured.NestedStringMap(u.Object, "data")
				want := map[string]string{
					"REGION": c.Region, "DATACENTRE_ROLE": tt.role, "CLUSTER": c.Name,
					"CLUSTER_REGION": c.Region, "ROLLOUT_WAVE": c.Wave, "CLUSTER_TIER": c.Labels["tier"],
					"LOG_PREFIX": "[${REQUEST_ID}] " + c.Region,
				}
				if diff := cmp.Diff(want, data); diff != "" {
					t.Errorf("%s region-config data (-want +got):\n%s", tt.cluster, diff)
				}
				if got := u.GetLabels()["environment"]; got != c.Environment {
					t.Errorf("%s region-config label environment = %q, want %q", tt.cluster, got, c.Environment)
				}
			}
		}
	}
}

func TestSubstitution(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    string
		wantErr []string
	}{
		{name: "cluster variables", value: "${CLUSTER_NAME}/${CLUSTER_ENVIRONMENT}/${CLUSTER_REGION}/${CLUSTER_WAVE}", want: "x/staging/r1/canary"},
		{name: "labels", value: "${CLUSTER_LABEL_TIER} ${CLUSTER_LABEL_EXAMPLE_COM_OWNER}", want: "canary team-a"},
		{name: "escape", value: "$${CLUSTER_NAME} $${HOME}", want: "${CLUSTER_NAME} ${HOME}"},
		{name: "unknown", value: "${CLUSTER_FOO}", wantErr: []string{"v1/ConfigMap/apps/app: data.value: unknown variable ${CLUSTER_FOO}"}},
		{name: "every unknown", value: "${A}-${CLUSTER_NAME}-${B}", wantErr: []string{"unknown variable ${A}", "unknown variable ${B}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := writeRepo(t, map[string]string{
				"clusters/x/kustomization.yaml": kustomization("app.yaml"),
				"clusters/x/app.yaml":           configMap("app", tt.value),
			})
			res, err := renderX(t, repo)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _, _ := unstructured.NestedString(res.Objects[0].Object, "data", "value")
			if got != tt.want {
				t.Errorf("data.value = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfinement(t *testing.T) {
	outside := writeRepo(t, map[string]string{
		"secret.yaml":              configMap("stolen", "s"),
		"base/kustomization.yaml":  kustomization("cm.yaml"),
		"base/cm.yaml":             configMap("from-outside", "s"),
		"secret-dir/x/secret.yaml": configMap("stolen", "s"),
	})
	tests := []struct {
		name     string
		files    map[string]string
		links    map[string]string // link → target; a relative target is inside the repo
		wantErr  []string          // empty: the render succeeds
		wantObjs []string
	}{
		{
			name:    "parent path",
			files:   map[string]string{"clusters/x/kustomization.yaml": kustomization("../../../secret.yaml")},
			wantErr: []string{"../../../secret.yaml", "outside the repository"},
		},
		{
			name:    "symlink to /etc",
			files:   map[string]string{"clusters/x/kustomization.yaml": kustomization("etc-link/passwd")},
			links:   map[string]string{"clusters/x/etc-link": "/etc"},
			wantErr: []string{`clusters/x/etc-link/passwd" resolves to "/etc/passwd", outside the repository`},
		},
		{
			name:    "symlinked file outside",
			files:   map[string]string{"clusters/x/kustomization.yaml": kustomization("secret.yaml")},
			links:   map[string]string{"clusters/x/secret.yaml": filepath.Join(outside, "secret.yaml")},
			wantErr: []string{`clusters/x/secret.yaml" resolves to`, "outside the repository"},
		},
		{
			name:    "symlinked base outside",
			files:   map[string]string{"clusters/x/kustomization.yaml": kustomization("../../base")},
			links:   map[string]string{"base": filepath.Join(outside, "base")},
			wantErr: []string{"outside the repository"},
		},
		{
			name:    "absolute path",
			files:   map[string]string{"clusters/x/kustomization.yaml": kustomization(filepath.Join(outside, "base"))},
			wantErr: []string{"outside the repository"},
		},
		{
			name: "symlink inside the repository",
			files: map[string]string{
				"clusters/x/kustomization.yaml": kustomization("../../shared"),
				"common/kustomization.yaml":     kustomization("cm.yaml"),
				"common/cm.yaml":                configMap("shared", "v"),
			},
			links:    map[string]string{"shared": "common"},
			wantObjs: []string{"v1/ConfigMap/apps/shared"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := writeRepo(t, tt.files)
			for link, target := range tt.links {
				if err := os.Symlink(target, filepath.Join(repo, link)); err != nil {
					t.Fatal(err)
				}
			}
			res, err := renderX(t, repo)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.wantObjs, ids(res.Objects)); diff != "" {
					t.Errorf("IDs (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatalf("rendered %v, want an error", ids(res.Objects))
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRefusedKustomizations(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(configMap("remote", "r")))
	}))
	defer srv.Close()
	head := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
	tests := []struct {
		name    string
		kust    string
		wantErr []string
	}{
		{"http resource", kustomization("app.yaml", srv.URL+"/cm.yaml"), []string{"clusters/x/kustomization.yaml: resources[1]: remote", srv.URL}},
		{"git base", kustomization("git@github.com:org/fleet.git//base?ref=v1"), []string{"resources[0]: remote"}},
		{"github shorthand base", kustomization("github.com/org/fleet/base"), []string{"resources[0]: remote"}},
		{"remote component", head + "components:\n- " + srv.URL + "/component\n", []string{"components[0]: remote"}},
		{"remote patch", head + "resources: [app.yaml]\npatches:\n- path: " + srv.URL + "/patch.yaml\n", []string{"patches[0].path: remote"}},
		{"helm chart", head + "helmCharts:\n- name: podinfo\n  repo: " + srv.URL + "\n", []string{"helmCharts: Helm chart inflation is not supported"}},
		{"openapi schema", head + "resources: [app.yaml]\nopenapi:\n  path: schema.json\n", []string{"openapi: custom OpenAPI schemas are not supported"}},
		{"exec function", head + "resources: [app.yaml]\ngenerators: [gen.yaml]\n", []string{"external plugins disabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := writeRepo(t, map[string]string{
				"clusters/x/kustomization.yaml": tt.kust,
				"clusters/x/app.yaml":           configMap("app", "v"),
				"clusters/x/schema.json":        "{}",
				"clusters/x/gen.yaml": "apiVersion: example.com/v1\nkind: Gen\nmetadata:\n  name: gen\n" +
					"  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n",
			})
			res, err := renderX(t, repo)
			if err == nil {
				t.Fatalf("rendered %v, want an error", ids(res.Objects))
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the remote server was asked %d times, want never", n)
	}
}

func TestObjectProblems(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr []string
	}{
		{
			name: "duplicate from two files",
			files: map[string]string{
				"clusters/x/kustomization.yaml": kustomization("a.yaml", "b.yaml"),
				"clusters/x/a.yaml":             configMap("app", "1"),
				"clusters/x/b.yaml":             configMap("app", "2"),
			},
			wantErr: []string{"duplicate object v1/ConfigMap/apps/app: defined in clusters/x/a.yaml and clusters/x/b.yaml"},
		},
		{
			name: "duplicate after substitution",
			files: map[string]string{
				"clusters/x/kustomization.yaml": kustomization("a.yaml", "b.yaml"),
				"clusters/x/a.yaml":             strings.Replace(configMap("app-${CLUSTER_REGION}", "1"), "name: app-", "name: app-", 1),
				"clusters/x/b.yaml":             configMap("app-r1", "2"),
			},
			wantErr: []string{"duplicate object v1/ConfigMap/apps/app-r1", "v1/ConfigMap/apps/app-${CLUSTER_REGION}"},
		},
		{
			name: "missing name",
			files: map[string]string{
				"clusters/x/kustomization.yaml": kustomization("nameless.yaml"),
				"clusters/x/nameless.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: apps\n",
			},
			wantErr: []string{"nameless.yaml", "missing metadata.name"},
		},
		{
			name: "missing kind",
			files: map[string]string{
				"clusters/x/kustomization.yaml": kustomization("kindless.yaml"),
				"clusters/x/kindless.yaml":      "apiVersion: v1\nmetadata:\n  name: k\n",
			},
			wantErr: []string{"kindless.yaml", "missing kind"},
		},
		{
			name: "missing apiVersion",
			files: map[string]string{
				"clusters/x/kustomization.yaml": kustomization("versionless.yaml"),
				"clusters/x/versionless.yaml":   "kind: ConfigMap\nmetadata:\n  name: v\n",
			},
			wantErr: []string{"clusters/x/versionless.yaml: /ConfigMap//v: missing apiVersion"},
		},
		{
			name: "malformed yaml",
			files: map[string]string{
				"clusters/x/kustomization.yaml": kustomization("bad.yaml"),
				"clusters/x/bad.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n   x: y\n",
			},
			wantErr: []string{"bad.yaml", "line 5"},
		},
		{
			name: "missing file",
			files: map[string]string{
				"clusters/x/kustomization.yaml": kustomization("gone.yaml"),
			},
			wantErr: []string{"gone.yaml", "does not exist"},
		},
		{
			name: "file too large",
			files: map[string]string{
				"clusters/x/kustomization.yaml": kustomization("big.yaml"),
				"clusters/x/big.yaml":           configMap("big", strings.Repeat("x", render.MaxFileSize)),
			},
			wantErr: []string{`file "clusters/x/big.yaml" is`, "larger than the 4 MiB limit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := renderX(t, writeRepo(t, tt.files))
			if err == nil {
				t.Fatalf("rendered %v, want an error", ids(res.Objects))
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestObjectID(t *testing.T) {
	tests := []struct {
		obj  map[string]any
		want string
	}{
		{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "d", "namespace": "ns"}}, "apps/v1/Deployment/ns/d"},
		{map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "ns"}}, "v1/ConfigMap/ns/c"},
		{map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "ns"}}, "v1/Namespace//ns"},
	}
	for _, tt := range tests {
		if got := render.ObjectID(&unstructured.Unstructured{Object: tt.obj}); got != tt.want {
			t.Errorf("ObjectID = %q, want %q", got, tt.want)
		}
	}
}

func TestOrder(t *testing.T) {
	doc := func(apiVersion, kind, name, ns string) string {
		s := "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"
		if ns != "" {
			s += "  namespace: " + ns + "\n"
		}
		return s
	}
	repo := writeRepo(t, map[string]string{
		"clusters/x/kustomization.yaml": kustomization("all.yaml"),
		"clusters/x/all.yaml": strings.Join([]string{
			doc("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "hook", ""),
			doc("example.com/v1", "Widget", "w", "b"),
			doc("apps/v1", "Deployment", "d", "b"),
			doc("v1", "ConfigMap", "c2", "b"),
			doc("v1", "ConfigMap", "c1", "b"),
			doc("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com", ""),
			doc("v1", "Namespace", "b", ""),
			doc("v1", "Namespace", "a", ""),
		}, "---\n"),
	})
	res, err := renderX(t, repo)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"v1/Namespace//a",
		"v1/Namespace//b",
		"apiextensions.k8s.io/v1/CustomResourceDefinition//widgets.example.com",
		"v1/ConfigMap/b/c1",
		"v1/ConfigMap/b/c2",
		"apps/v1/Deployment/b/d",
		"example.com/v1/Widget/b/w",
		"admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration//hook",
	}
	if diff := cmp.Diff(want, ids(res.Objects)); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestHash(t *testing.T) {
	repo := writeRepo(t, map[string]string{
		"clusters/x/kustomization.yaml": kustomization("b.yaml", "a.yaml"),
		"clusters/x/a.yaml":             configMap("a", "${CLUSTER_NAME}"),
		"clusters/x/b.yaml":             configMap("b", "2"),
	})
	first, err := renderX(t, repo)
	if err != nil {
		t.Fatal(err)
	}
	second, err := renderX(t, repo)
	if err != nil {
		t.Fatal(err)
	}
	if first.Hash != second.Hash {
		t.Errorf("two renders hash %s and %s", first.Hash, second.Hash)
	}
	// The hash is a function of the content only, so it is the same in
	// every process and on every machine.
	const want = "eb425723b39c4a2b3b997849cdeedd0336b99d4f35a1746efa8a3c1c8672d079"
	if first.Hash != want {
		t.Logf("hash %s (update the constant if the canonical form changed on purpose)", first.Hash)
		t.Errorf("hash = %s, want %s", first.Hash, want)
	}
	if err := os.WriteFile(filepath.Join(repo, "clusters/x/b.yaml"), []byte(configMap("b", "3")), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := renderX(t, repo)
	if err != nil {
		t.Fatal(err)
	}
	if third.Hash == first.Hash {
		t.Errorf("hash %s did not change when b.yaml changed", third.Hash)
	}
}

func TestAllReportsEveryCluster(t *testing.T) {
	repo := writeRepo(t, map[string]string{
		"clusters/good/kustomization.yaml": kustomization("app.yaml"),
		"clusters/good/app.yaml":           configMap("app", "ok"),
		"clusters/bad1/kustomization.yaml": kustomization("gone.yaml"),
		"clusters/bad2/kustomization.yaml": kustomization("app.yaml"),
		"clusters/bad2/app.yaml":           configMap("app", "${NOPE}"),
	})
	f := &fleet.Fleet{Clusters: []fleet.Cluster{
		{Name: "good", Path: "clusters/good"},
		{Name: "bad1", Path: "clusters/bad1"},
		{Name: "bad2", Path: "clusters/bad2"},
	}}
	var r render.Renderer
	_, err := r.All(context.Background(), repo, f, nil)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "render bad1: ") || !strings.HasPrefix(lines[1], "render bad2: ") {
		t.Errorf("error lines = %q, want one for bad1 then one for bad2", lines)
	}
}

// TestConcurrentRenders renders every cluster of the fixture fleet from
// several goroutines at once; under -race it is the evidence that krusty
// needs no lock (see the package doc).
func TestConcurrentRenders(t *testing.T) {
	f := loadFixtureFleet(t)
	r := render.Renderer{Parallelism: len(f.Clusters)}
	baseline, err := r.All(context.Background(), fixtureFleet, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := r.All(context.Background(), fixtureFleet, f, nil)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range got {
				if got[i].Hash != baseline[i].Hash {
					t.Errorf("%s: concurrent render hash %s, sequential %s", got[i].Cluster, got[i].Hash, baseline[i].Hash)
				}
			}
		}()
	}
	wg.Wait()
}

// TestSharedBasesStayApart renders clusters whose overlays change one shared
// base each in its own way, and a cluster that includes that base twice.
// kustomize parses each file's content once per render and hands every
// build its own copy (internal/third_party, resource.ParseCache): were a
// copy shared, one overlay's prefix, labels or patch would show in another.
func TestSharedBasesStayApart(t *testing.T) {
	deployment := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: apps\nspec:\n  replicas: 1\n" +
		"  selector:\n    matchLabels: {app: app}\n  template:\n    metadata:\n      labels: {app: app}\n    spec:\n      containers:\n      - name: app\n        image: app:1\n"
	overlay := func(prefix string, replicas string, resources ...string) string {
		return kustomization(resources...) + "namePrefix: " + prefix + "\nlabels:\n- pairs: {overlay: " + prefix + "}\n" +
			"patches:\n- patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: app, namespace: apps}\n    spec: {replicas: " + replicas + "}\n"
	}
	repo := writeRepo(t, map[string]string{
		"base/kustomization.yaml": kustomization("app.yaml", "config.yaml"),
		"base/app.yaml":           deployment,
		"base/config.yaml":        configMap("config", "base"),
		// Same content as base/config.yaml, in another file.
		"clusters/a/config.yaml":          configMap("config", "base"),
		"clusters/a/kustomization.yaml":   overlay("a-", "3", "../../base"),
		"clusters/b/kustomization.yaml":   overlay("b-", "5", "../../base"),
		"clusters/c/kustomization.yaml":   kustomization("../../base"),
		"variants/one/kustomization.yaml": overlay("one-", "2", "../../base"),
		"variants/two/kustomization.yaml": overlay("two-", "4", "../../base"),
		"clusters/d/kustomization.yaml":   kustomization("../../variants/one", "../../variants/two"),
	})
	f := &fleet.Fleet{}
	for _, name := range []string{"a", "b", "c", "d"} {
		f.Clusters = append(f.Clusters, fleet.Cluster{Name: name, Path: "clusters/" + name})
	}
	// name → "replicas label" of every object of each cluster, as
	// kustomize builds each overlay by itself.
	want := map[string][]string{
		"a": {"ConfigMap a-config - a-", "Deployment a-app 3 a-"},
		"b": {"ConfigMap b-config - b-", "Deployment b-app 5 b-"},
		"c": {"ConfigMap config - -", "Deployment app 1 -"},
		"d": {"ConfigMap one-config - one-", "ConfigMap two-config - two-", "Deployment one-app 2 one-", "Deployment two-app 4 two-"},
	}
	summary := func(res *render.Result) []string {
		var out []string
		for _, u := range res.Objects {
			replicas, ok, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
			r := "-"
			if ok {
				r = fmt.Sprint(replicas)
			}
			label := u.GetLabels()["overlay"]
			if label == "" {
				label = "-"
			}
			out = append(out, u.GetKind()+" "+u.GetName()+" "+r+" "+label)
		}
		sort.Strings(out)
		return out
	}
	r := render.Renderer{Parallelism: 2}
	for round := range 3 {
		all, err := r.All(context.Background(), repo, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, res := range all {
			name := f.Clusters[i].Name
			if diff := cmp.Diff(want[name], summary(res)); diff != "" {
				t.Errorf("round %d: cluster %s rendered with the others (-want +got):\n%s", round, name, diff)
			}
			alone, err := r.Cluster(context.Background(), repo, f, &f.Clusters[i])
			if err != nil {
				t.Fatal(err)
			}
			if alone.Hash != res.Hash {
				t.Errorf("round %d: cluster %s: hash %s rendered with the others, %s alone", round, name, res.Hash, alone.Hash)
			}
		}
	}
}
