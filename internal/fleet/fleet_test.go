package fleet_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

// fleetCmp compares Fleets: zones by name, quantities by value, parsed cron
// schedules left to the schedule tests.
var fleetCmp = []cmp.Option{
	cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
	cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 }),
	cmpopts.IgnoreFields(fleet.Window{}, "Cron"),
	cmpopts.IgnoreFields(fleet.Reconcile{}, "Cron"),
}

func mustLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestParseDesignExample parses the reference fleet.yaml of testdata, the
// format's full example.
func TestParseDesignExample(t *testing.T) {
	data, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := fleet.Parse("fleet.yaml", data, "")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	shanghai := mustLocation(t, "Asia/Shanghai")
	want := &fleet.Fleet{
		Name:     "intelligent-environment",
		Timezone: "Asia/Shanghai",
		Location: shanghai,
		Clusters: []fleet.Cluster{
			{
				Name: "staging", Environment: "staging", Region: "cn-north", Path: "clusters/staging",
				Kubeconfig: fleet.KubeconfigRef{Context: "staging"},
				Capacity: map[string]resource.Quantity{
					"cpu": resource.MustParse("100"), "memory": resource.MustParse("200Gi"), "nvidia.com/gpu": resource.MustParse("10"),
				},
				Labels: map[string]string{"tier": "canary"},
				Wave:   "canary",
			},
			{
				Name: "prod-primary", Environment: "production", Region: "cn-east", Path: "clusters/prod-primary",
				Kubeconfig: fleet.KubeconfigRef{Context: "prod-primary"}, Wave: "primary",
			},
			{
				Name: "prod-secondary", Environment: "production", Region: "cn-south", Path: "clusters/prod-secondary",
				Kubeconfig: fleet.KubeconfigRef{SecretRef: &fleet.SecretRef{Name: "prod-secondary-kubeconfig", Namespace: "convoy-system", Key: "value"}},
				Wave:       "secondary",
			},
			{
				Name: "prod-edge", Environment: "production", Region: "cn-edge", Path: "clusters/prod-edge",
				Kubeconfig: fleet.KubeconfigRef{InCluster: true}, Wave: "secondary",
			},
			{
				Name: "dr", Environment: "production", Region: "cn-south", Path: "clusters/dr",
				Kubeconfig: fleet.KubeconfigRef{Context: "dr"}, Wave: "dr",
			},
		},
		Rollout: fleet.Rollout{
			Waves: []fleet.Wave{
				{Name: "canary", Clusters: []string{"staging"}, Bake: 2 * time.Minute},
				{Name: "primary", Clusters: []string{"prod-primary"}},
				{Name: "secondary", Clusters: []string{"prod-secondary", "prod-edge"}, MaxParallel: 2},
				{Name: "dr", Clusters: []string{"dr"}},
			},
			HealthTimeout:     5 * time.Minute,
			FailFast:          true,
			RollbackOnFailure: true,
		},
		Windows: []fleet.Window{{
			Name: "business-hours", Kind: "deny", Schedule: "0 9 * * 1-5", Duration: 9 * time.Hour,
			Environments: []string{"production"}, AllowCategories: []string{"emergency"},
		}},
		Reconcile: fleet.Reconcile{Schedule: "@every 10m"},
		Change:    fleet.ChangeSource{Source: "github", GitHub: fleet.GitHubRepo{Owner: "acme", Repo: "fleet-config"}},
		PolicyData: map[string]any{
			"approvals":     map[string]any{"emergency": int64(1), "standard": int64(1), "normal": int64(1), "major": int64(2)},
			"businessHours": map[string]any{"days": []any{int64(1), int64(2), int64(3), int64(4), int64(5)}, "start": "09:00", "end": "18:00"},
		},
	}
	if diff := cmp.Diff(want, got, fleetCmp...); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}

	// The window opens at 09:00 in Shanghai, whatever the machine's zone.
	tuesdayEvening := time.Date(2026, 11, 24, 18, 0, 0, 0, shanghai)
	if got, want := got.Windows[0].Cron.Next(tuesdayEvening), time.Date(2026, 11, 25, 9, 0, 0, 0, shanghai); !got.Equal(want) {
		t.Errorf("business-hours next start = %v, want %v", got, want)
	}
	if got, want := got.Reconcile.Cron.Next(tuesdayEvening), tuesdayEvening.Add(10*time.Minute); !got.Equal(want) {
		t.Errorf("reconcile next = %v, want %v", got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	got, err := fleet.Parse("fleet.yaml", []byte(doc(clusters, rollout)), "")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &fleet.Fleet{
		Name:     "demo",
		Location: time.UTC,
		Clusters: []fleet.Cluster{
			{Name: "a", Environment: "prod", Path: "clusters/a", Kubeconfig: fleet.KubeconfigRef{Context: "a"}, Wave: "one"},
			{Name: "b", Environment: "dev", Path: "clusters/b", Kubeconfig: fleet.KubeconfigRef{Context: "b"}, Wave: "one"},
		},
		Rollout: fleet.Rollout{
			Waves:         []fleet.Wave{{Name: "one", Clusters: []string{"a", "b"}}},
			HealthTimeout: 5 * time.Minute,
			FailFast:      true,
		},
		Change:     fleet.ChangeSource{Source: "trailers"},
		PolicyData: map[string]any{},
	}
	if diff := cmp.Diff(want, got, fleetCmp...); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	if got.Reconcile.Cron != nil {
		t.Errorf("Reconcile.Cron = %v, want nil without a schedule", got.Reconcile.Cron)
	}
}

func TestParseExplicitValues(t *testing.T) {
	got, err := fleet.Parse("fleet.yaml", []byte(doc(clusters, `  rollout:
    waves: [{name: one, clusters: [a, b], maxParallel: 0, bake: 0}]
    failFast: false
    healthTimeout: 90s
  change: {source: trailers}
`)), "")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := fleet.Rollout{
		Waves:         []fleet.Wave{{Name: "one", Clusters: []string{"a", "b"}}},
		HealthTimeout: 90 * time.Second,
		FailFast:      false,
	}
	if diff := cmp.Diff(want, got.Rollout); diff != "" {
		t.Errorf("Rollout (-want +got):\n%s", diff)
	}
}

// TestParseYAMLFeatures checks anchors, aliases and merge keys, which shared
// settings in a large fleet.yaml use.
func TestParseYAMLFeatures(t *testing.T) {
	got, err := fleet.Parse("fleet.yaml", []byte(doc(`  clusters:
  - &prod {name: a, environment: prod, path: clusters/a, kubeconfig: {context: a}, labels: {tier: gold}}
  - <<: *prod
    name: b
    kubeconfig: {context: b}
`, rollout, `  policy:
    data:
      limits: &limits {cpu: 4, ratio: 0.5, big: 18446744073709551615}
      copy: *limits
      when: 2026-01-01
      flags: [true, null, "2"]
`)), "")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	wantClusters := []fleet.Cluster{
		{Name: "a", Environment: "prod", Path: "clusters/a", Kubeconfig: fleet.KubeconfigRef{Context: "a"}, Labels: map[string]string{"tier": "gold"}, Wave: "one"},
		{Name: "b", Environment: "prod", Path: "clusters/a", Kubeconfig: fleet.KubeconfigRef{Context: "b"}, Labels: map[string]string{"tier": "gold"}, Wave: "one"},
	}
	if diff := cmp.Diff(wantClusters, got.Clusters, fleetCmp...); diff != "" {
		t.Errorf("Clusters (-want +got):\n%s", diff)
	}
	limits := map[string]any{"cpu": int64(4), "ratio": 0.5, "big": json.Number("18446744073709551615")}
	wantData := map[string]any{
		"limits": limits,
		"copy":   limits,
		"when":   "2026-01-01",
		"flags":  []any{true, nil, "2"},
	}
	if diff := cmp.Diff(wantData, got.PolicyData); diff != "" {
		t.Errorf("PolicyData (-want +got):\n%s", diff)
	}
	// Rego receives the data as JSON: whole numbers must stay whole.
	b, err := json.Marshal(got.PolicyData["limits"])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"big":18446744073709551615,"cpu":4,"ratio":0.5}`; got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
}

func TestParseAliasBomb(t *testing.T) {
	bomb := doc(clusters, rollout, `  policy:
    data:
      a: &a [x, x, x, x, x, x, x, x, x, x]
      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
      h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
`)
	_, err := fleet.Parse("fleet.yaml", []byte(bomb), "")
	got := problemLines(t, err)
	if len(got) != 1 || !strings.Contains(got[0], "expands to too many values through aliases") {
		t.Errorf("problems = %q, want one about alias expansion", got)
	}
}

func TestWaveHelpers(t *testing.T) {
	data, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := fleet.Parse("fleet.yaml", data, "")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var got [][]string
	for _, wave := range f.WaveClusters() {
		var names []string
		for _, c := range wave {
			names = append(names, c.Name)
		}
		got = append(got, names)
	}
	want := [][]string{{"staging"}, {"prod-primary"}, {"prod-secondary", "prod-edge"}, {"dr"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("WaveClusters (-want +got):\n%s", diff)
	}
	if c := f.WaveClusters()[2][1]; c != f.ClusterByName("prod-edge") {
		t.Errorf("WaveClusters()[2][1] = %p, want the fleet's own cluster %p", c, f.ClusterByName("prod-edge"))
	}
	for name, want := range map[string]int{"canary": 0, "secondary": 2, "dr": 3, "nope": -1} {
		if got := f.WaveIndex(name); got != want {
			t.Errorf("WaveIndex(%q) = %d, want %d", name, got, want)
		}
	}
}

// writeRepo makes a config repository with the given directories.
func writeRepo(t *testing.T, fleetYAML string, dirs ...string) string {
	t.Helper()
	repo := t.TempDir()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(repo, fleet.FileName), []byte(fleetYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return repo
}

func TestLoadPaths(t *testing.T) {
	outside := t.TempDir()
	repo := writeRepo(t, doc(`  clusters:
  - {name: a, environment: e, path: clusters/a, kubeconfig: {context: a}}
  - {name: b, environment: e, path: clusters/missing, kubeconfig: {context: b}}
  - {name: c, environment: e, path: clusters/file, kubeconfig: {context: c}}
  - {name: d, environment: e, path: clusters/out, kubeconfig: {context: d}}
  - {name: f, environment: e, path: ./clusters/in/, kubeconfig: {context: f}}
  - {name: g, environment: e, path: clusters/out/sub, kubeconfig: {context: g}}
`, "  rollout: {waves: [{name: one, clusters: [a, b, c, d, f, g]}]}\n"), "clusters/a", "shared/in")
	if err := os.WriteFile(filepath.Join(repo, "clusters/file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(outside, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(repo, "clusters/out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../shared/in", filepath.Join(repo, "clusters/in")); err != nil {
		t.Fatal(err)
	}

	_, err := fleet.Load(repo)
	want := []string{
		`fleet.yaml:7: spec.clusters[1].path: "clusters/missing" does not exist in the repository`,
		`fleet.yaml:8: spec.clusters[2].path: "clusters/file" is not a directory`,
		`fleet.yaml:9: spec.clusters[3].path: "clusters/out" resolves through a symlink to outside the repository`,
		`fleet.yaml:11: spec.clusters[5].path: "clusters/out/sub" resolves through a symlink to outside the repository`,
	}
	if diff := cmp.Diff(want, problemLines(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}

	// The same file without repository checks only looks at the paths' form.
	data, err := os.ReadFile(filepath.Join(repo, fleet.FileName))
	if err != nil {
		t.Fatal(err)
	}
	f, err := fleet.Parse("fleet.yaml", data, "")
	if err != nil {
		t.Fatalf("Parse without repoDir: %v", err)
	}
	if got, want := f.ClusterByName("f").Path, "clusters/in"; got != want {
		t.Errorf("cleaned path = %q, want %q", got, want)
	}
}

func TestLoadFleetFileOutsideRepo(t *testing.T) {
	outside := writeRepo(t, doc(clusters, rollout), "clusters/a", "clusters/b")
	repo := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, fleet.FileName), filepath.Join(repo, fleet.FileName)); err != nil {
		t.Fatal(err)
	}
	_, err := fleet.Load(repo)
	want := []string{`fleet.yaml:1: not a regular file: fleet.yaml must be a file, not a symbolic link`}
	if diff := cmp.Diff(want, problemLines(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	// A link to /dev/zero would never end: refused before any read.
	zero := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(zero, fleet.FileName)); err != nil {
		t.Fatal(err)
	}
	_, err = fleet.Load(zero)
	if diff := cmp.Diff(want, problemLines(t, err)); diff != "" {
		t.Errorf("a link to /dev/zero: problems (-want +got):\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	repo := writeRepo(t, doc(clusters, rollout), "clusters/a", "clusters/b")
	f, err := fleet.Load(repo)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := f.ClusterByName("b").Wave, "one"; got != want {
		t.Errorf("cluster b wave = %q, want %q", got, want)
	}

	_, err = fleet.Load(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a repo without fleet.yaml = %v, want an error wrapping fs.ErrNotExist", err)
	}
}
