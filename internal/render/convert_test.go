package render

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/api/resource"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

// convertCases are documents whose values stress the YAML and JSON round
// trip that toUnstructured must reproduce. direct says whether the direct
// conversion applies (else it takes the round trip itself).
var convertCases = []struct {
	name   string
	doc    string
	direct bool
}{
	{"plain", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: y\n", true},
	{"scalars", `apiVersion: v1
kind: Thing
metadata: {name: a, labels: {"1": "2"}}
spec:
  int: 42
  neg: -7
  zero: 0
  negzero: -0
  big: 9223372036854775807
  bool: true
  boolCap: False
  null1: null
  null2: ~
  null3:
  str: hello
  quotedInt: "42"
  singleBool: 'true'
  float: 0.5
  floatInt: 2.0
  floatExp: 1e3
  floatSmall: 1.5e-7
  floatNeg: -3.25
  multi: |
    line one
    line two
  empty: ""
  emptyMap: {}
  emptyList: []
  list: [1, "2", true, null, 1.5, x]
  nested: {a: {b: [c, {d: 1}]}}
  unicode: "ümlaut \u2028 tab\t"
  specials: "a: b # c"
  yesIsString: yes
  onIsString: on
`, true},
	{"folded", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec:\n  x: >\n    a\n    b\n", false},
	{"empty value in a flow map", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: }\n", false},
	{"empty value in a flow list", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: [a, , b]\n", false},
	{"octal", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {mode: 0644}\n", false},
	{"octal 1.2", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {mode: 0o644}\n", false},
	{"hex", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: 0x1F}\n", false},
	{"underscore", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: 1_000}\n", false},
	{"plus", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: +5}\n", false},
	{"uint64", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: 18446744073709551615}\n", false},
	{"beyond uint64", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: 98446744073709551615}\n", true},
	{"huge float", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: 1e300, y: 12345678901234567890.0, z: 9007199254740993.0}\n", true},
	{"infinity", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: .inf}\n", false},
	{"nan", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: .nan}\n", false},
	{"dot float", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: .5}\n", false},
	{"timestamp", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: 2024-01-02, y: 2024-01-02T03:04:05Z}\n", false},
	{"explicit str", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: !!str 12}\n", false},
	{"explicit int", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: !!int \"12\"}\n", false},
	{"explicit float", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: !!float 1}\n", false},
	{"binary", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: !!binary aGVsbG8=}\n", false},
	{"custom tag", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {x: !foo bar}\n", false},
	{"int key", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {1: a}\n", false},
	{"bool key", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {true: a}\n", false},
	{"null key", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec: {~: a}\n", false},
	{"anchors", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec:\n  a: &x {b: 1}\n  c: *x\n", true},
	{"merge key", "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\nspec:\n  a: &x {b: 1}\n  c:\n    <<: *x\n    d: 2\n", true},
	{"kind not a string", "apiVersion: v1\nkind: 5\nmetadata: {name: a}\n", true},
}

// resources parses doc with kustomize's resource factory.
func resources(t testing.TB, doc string) []*resource.Resource {
	t.Helper()
	rs, err := provider.NewDefaultDepProvider().GetResourceFactory().SliceFromBytes([]byte(doc))
	if err != nil {
		t.Skipf("kustomize refuses the document: %v", err)
	}
	return rs
}

// sameConversion checks that toUnstructured gives what the round trip
// gives, errors included.
func sameConversion(t testing.TB, res *resource.Resource) {
	t.Helper()
	want, wantErr := viaJSON(res)
	got, err := toUnstructured(res)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("%s: error %v, want %v", res.CurId(), err, wantErr)
	}
	if err != nil {
		return
	}
	// cmp.Diff tells int64 from float64, and an empty map from nil.
	if diff := cmp.Diff(want.Object, got.Object); diff != "" {
		t.Fatalf("%s: converted object (-round trip +direct):\n%s", res.CurId(), diff)
	}
}

func TestToUnstructured(t *testing.T) {
	for _, tt := range convertCases {
		t.Run(tt.name, func(t *testing.T) {
			for _, res := range resources(t, tt.doc) {
				sameConversion(t, res)
				_, direct := nodeValue(res.YNode(), false)
				if direct != tt.direct {
					t.Errorf("direct conversion = %v, want %v", direct, tt.direct)
				}
			}
		})
	}
}

// TestRenderedConversion converts what kustomize builds, with the nodes its
// transformers and generators make, both ways.
func TestRenderedConversion(t *testing.T) {
	f, err := fleet.Load("../../fixtures/fleet")
	if err != nil {
		t.Fatal(err)
	}
	type build struct{ repo, dir string }
	builds := map[string]build{}
	for _, c := range f.Clusters {
		builds["fixtures/"+c.Name] = build{"../../fixtures/fleet", c.Path}
	}
	repo := t.TempDir()
	writeTree(t, repo, map[string]string{
		"base/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: apps
namePrefix: p-
commonAnnotations: {build: "7", enabled: "true"}
labels:
- pairs: {version: "1.0", count: "3"}
  includeTemplates: true
resources: [app.yaml]
configMapGenerator:
- name: gen
  literals: [PORT=8080, ENABLED=true, EMPTY=, "MULTI=a\nb", "CRLF=a\r\nb", "FLOAT=0.5", "NULL=null"]
secretGenerator:
- name: sec
  literals: [token=abc]
replicas:
- {name: app, count: 4}
images:
- {name: app, newName: registry.example.com/app, newTag: "1.2"}
patches:
- target: {kind: Deployment}
  patch: |-
    - op: add
      path: /spec/minReadySeconds
      value: 10
    - op: add
      path: /spec/paused
      value: false
    - op: add
      path: /spec/template/metadata/annotations
      value: {ratio: 0.25, when: "2024-01-02"}
- patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: app}
    spec:
      progressDeadlineSeconds: 600
      template:
        spec:
          containers:
          - name: app
            resources: {limits: {cpu: 1.5, memory: 1Gi}}
`,
		"base/app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
      - name: app
        image: app
        args: ["--x=1", "--flag", ""]
        envFrom: [{configMapRef: {name: gen}}, {secretRef: {name: sec}}]
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  selector: {app: app}
  ports: [{port: 80, targetPort: 8080}]
`,
	})
	builds["generators and patches"] = build{repo, "base"}
	for name, b := range builds {
		t.Run(name, func(t *testing.T) {
			fsys, err := newRepoFS(b.repo)
			if err != nil {
				t.Fatal(err)
			}
			m, err := kustomize(fsys, filepath.Join(fsys.root, b.dir))
			if err != nil {
				t.Fatal(err)
			}
			direct := 0
			for _, res := range m.Resources() {
				sameConversion(t, res)
				if _, ok := nodeValue(res.YNode(), false); ok {
					direct++
				}
			}
			if direct == 0 {
				t.Errorf("none of %d resources converted directly", m.Size())
			}
		})
	}
}

// TestRenderedHashes pins the hashes of the fixture fleet's renders, so
// that a faster render is also the same render.
func TestRenderedHashes(t *testing.T) {
	f, err := fleet.Load("../../fixtures/fleet")
	if err != nil {
		t.Fatal(err)
	}
	var r Renderer
	results, err := r.All(context.Background(), "../../fixtures/fleet", f, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, res := range results {
		got[res.Cluster] = res.Hash
	}
	// Recorded with the render before toUnstructured (a JSON round trip
	// per object).
	want := map[string]string{
		"dr":             "f0b4c1bb12a8a4aa8a8ca154ce6d0879358c158ca5fb2426e8bf52d7219626f6",
		"prod-edge":      "d2c6261d8e38940c5819f442b58355625632419166d0f841f4a4752cbe949cc3",
		"prod-primary":   "8d8c2afbd408c0b2da76f5195ad291a7046adb784b49a393f080d4ab052cc045",
		"prod-secondary": "fa2f301993b3ffb7f997a563a9a1f12a78f186e34b6d582cb85198aef41df0d0",
		"staging":        "0c115b1f7ad9f6070d76f73200b45ae274fe8b8e616a47d84eced84016b68529",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hashes (-want +got):\n%s", diff)
	}
}

// writeTree writes path → content under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzToUnstructured(f *testing.F) {
	for _, tt := range convertCases {
		f.Add(tt.doc)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if strings.Count(doc, "\n") > 200 || !decodes(doc) {
			return
		}
		rs, err := provider.NewDefaultDepProvider().GetResourceFactory().SliceFromBytes([]byte(doc))
		if err != nil {
			return
		}
		for _, res := range rs {
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Skip(fmt.Sprint("kyaml panics: ", p))
					}
				}()
				_, _ = res.MarshalJSON()
			}()
			sameConversion(t, res)
		}
	})
}

// decodes reports whether every document of doc decodes with yaml.v3. kyaml
// overflows the stack (a fatal error, not a panic) on an anchor whose value
// contains an alias of itself, which yaml.v3 reports as an error.
func decodes(doc string) bool {
	d := yaml.NewDecoder(strings.NewReader(doc))
	for {
		var v any
		err := d.Decode(&v)
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}
