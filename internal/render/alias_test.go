package render_test

import (
	"strings"
	"testing"
)

// TestAliases checks that YAML aliases kyaml cannot expand are refused
// with an error naming the file, instead of overflowing the stack (a fatal
// error that would end the process) or exhausting memory.
func TestAliases(t *testing.T) {
	laughs := billionLaughs("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n")
	tests := []struct {
		name    string
		doc     string
		wantErr []string // empty: the render succeeds
	}{
		{"recursive", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: &x\n    y: *x\n", []string{"clusters/x/a.yaml", "contains itself"}},
		{"exponential", laughs, []string{"clusters/x/a.yaml", "excessive aliasing"}},
		{"ordinary", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: &l {app: a}\n  annotations: *l\ndata:\n  glob: \"*.example.com & co\"\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := writeRepo(t, map[string]string{
				"clusters/x/kustomization.yaml": kustomization("a.yaml"),
				"clusters/x/a.yaml":             tt.doc,
			})
			res, err := renderX(t, repo)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Objects[0].GetAnnotations()["app"]; got != "a" {
					t.Errorf("annotation app = %q, want the alias's value a", got)
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

// billionLaughs is head followed by nine levels of nine aliases each, under
// data: 9^9 values once expanded.
func billionLaughs(head string) string {
	doc := head + "  a: &a [x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		doc += "  " + n + ": &" + n + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+", ", 9), ", ") + "]\n"
		prev = n
	}
	return doc
}
