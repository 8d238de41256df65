package deploytest_test

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

const (
	chartDir    = "../../charts/convoy"
	releaseName = "convoy"
	repoURL     = "https://git.example.com/platform/fleet-config.git"
)

// loadChart loads charts/convoy as `helm install` would (values.yaml,
// values.schema.json and templates, less .helmignore's patterns).
func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir, err)
	}
	return c
}

// rendered is the output of one chart render.
type rendered struct {
	objs  []*unstructured.Unstructured
	notes string
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// renderChart renders the chart as `helm install --namespace namespace`
// does, with valuesYAML over values.yaml: values are checked against
// values.schema.json, templates run in strict mode (a reference to a value
// that does not exist fails), and every document must be YAML without
// duplicate keys.
func renderChart(c *chart.Chart, namespace, valuesYAML string) (*rendered, error) {
	vals, err := chartutil.ReadValues([]byte(valuesYAML))
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true}
	top, err := chartutil.ToRenderValues(c, vals.AsMap(), opts, nil)
	if err != nil {
		return nil, err
	}
	files, err := engine.Engine{Strict: true}.Render(c, top)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	r := &rendered{}
	for _, name := range names {
		if strings.HasSuffix(name, "/NOTES.txt") {
			r.notes = files[name]
			continue
		}
		for i, doc := range docSeparator.Split(files[name], -1) {
			js, err := yaml.YAMLToJSONStrict([]byte(doc))
			if err != nil {
				return nil, fmt.Errorf("%s document %d: %w", name, i, err)
			}
			if string(js) == "null" {
				continue // only comments or blank
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(js); err != nil {
				return nil, fmt.Errorf("%s document %d: %w", name, i, err)
			}
			r.objs = append(r.objs, u)
		}
	}
	return r, nil
}

// mustRender renders the chart and fails the test on an error.
func mustRender(t testing.TB, c *chart.Chart, namespace, valuesYAML string) *rendered {
	t.Helper()
	r, err := renderChart(c, namespace, valuesYAML)
	if err != nil {
		t.Fatalf("render chart with values\n%s\n: %v", valuesYAML, err)
	}
	return r
}

// ids lists the objects as Kind/namespace/name, sorted.
func (r *rendered) ids() []string {
	out := make([]string, 0, len(r.objs))
	for _, o := range r.objs {
		out = append(out, o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

// one returns the only object of kind, or fails the test.
func (r *rendered) one(t testing.TB, kind string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range r.objs {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s, rendered %d; objects: %v", kind, len(found), r.ids())
	}
	return found[0]
}

// decode returns the only object of kind as T, decoded strictly: a field T
// does not know (a typo in a template) fails the test.
func decode[T any](t testing.TB, r *rendered, kind string) *T {
	t.Helper()
	u := r.one(t, kind)
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s/%s: %v", kind, u.GetName(), err)
	}
	return out
}

// resolveFile says where a file the container reads comes from, as
// "Kind/name:key" of the ConfigMap or Secret behind it; it fails when no
// read-only volume mount holds the path.
func resolveFile(pod corev1.PodSpec, c corev1.Container, path string) (string, error) {
	var mount *corev1.VolumeMount
	var rel string
	for i, m := range c.VolumeMounts {
		switch {
		case m.SubPath != "" && m.MountPath == path:
			// mounting one file of a volume
		case m.SubPath == "" && strings.HasPrefix(path, m.MountPath+"/"):
		default:
			continue
		}
		if mount == nil || len(m.MountPath) > len(mount.MountPath) {
			mount = &c.VolumeMounts[i]
			rel = m.SubPath
			if rel == "" {
				rel = strings.TrimPrefix(path, m.MountPath+"/")
			}
		}
	}
	if mount == nil {
		return "", fmt.Errorf("%s: no volume mount holds it", path)
	}
	if !mount.ReadOnly {
		return "", fmt.Errorf("%s: volume %s is mounted read-write at %s", path, mount.Name, mount.MountPath)
	}
	for _, v := range pod.Volumes {
		if v.Name != mount.Name {
			continue
		}
		switch {
		case v.ConfigMap != nil:
			key, err := itemKey(v.ConfigMap.Items, rel)
			if err != nil {
				return "", fmt.Errorf("%s: ConfigMap %s: %w", path, v.ConfigMap.Name, err)
			}
			return "ConfigMap/" + v.ConfigMap.Name + ":" + key, nil
		case v.Secret != nil:
			key, err := itemKey(v.Secret.Items, rel)
			if err != nil {
				return "", fmt.Errorf("%s: Secret %s: %w", path, v.Secret.SecretName, err)
			}
			return "Secret/" + v.Secret.SecretName + ":" + key, nil
		default:
			return "", fmt.Errorf("%s: volume %s is neither a ConfigMap nor a Secret", path, v.Name)
		}
	}
	return "", fmt.Errorf("%s: volume %s is mounted but not declared", path, mount.Name)
}

// itemKey maps a path inside a ConfigMap or Secret volume to the key that
// fills it.
func itemKey(items []corev1.KeyToPath, rel string) (string, error) {
	if len(items) == 0 {
		if strings.Contains(rel, "/") {
			return "", fmt.Errorf("no key makes %s", rel)
		}
		return rel, nil
	}
	for _, it := range items {
		if it.Path == rel {
			return it.Key, nil
		}
	}
	return "", fmt.Errorf("no item has path %s", rel)
}

// configFiles returns every file path the agent's config names: the values
// of keys "file" or ending in "File", at any depth.
func configFiles(cfg map[string]any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, x := range m {
			if s, ok := x.(string); ok && (k == "file" || strings.HasSuffix(k, "File")) {
				out = append(out, s)
			}
			walk(x)
		}
	}
	walk(cfg)
	sort.Strings(out)
	return out
}
