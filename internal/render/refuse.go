package render

// What a render refuses before kustomize sees it: kustomizations that name
// remote bases or files, Helm charts or OpenAPI schemas, and YAML aliases
// that expand beyond what the file holds.

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/types"
)

// isKustomizationFile reports whether p is named like a kustomization.
func isKustomizationFile(p string) bool {
	switch filepath.Base(p) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
		return true
	}
	return false
}

// checkKustomization refuses a kustomization that names remote bases or
// files, inflates Helm charts, or sets an OpenAPI schema (kyaml keeps the
// schema in process-wide state, so one repository's schema would leak into
// every later render). It reads the file as kustomize does, with
// kustomize's own type and decoder, so it sees what the build will see;
// content that does not decode is left to kustomize, whose error names the
// problem.
func checkKustomization(name string, b []byte) error {
	var k types.Kustomization
	if err := k.Unmarshal(b); err != nil {
		return nil
	}
	var errs []error
	lists := []struct {
		field string
		refs  []string
	}{
		{"resources", k.Resources}, {"bases", k.Bases}, {"components", k.Components},
		{"crds", k.Crds}, {"configurations", k.Configurations},
		{"patchesStrategicMerge", strategicMergePaths(k.PatchesStrategicMerge)},
		{"generators", k.Generators}, {"transformers", k.Transformers}, {"validators", k.Validators},
	}
	for _, l := range lists {
		for i, ref := range l.refs {
			if isRemote(ref) {
				errs = append(errs, fmt.Errorf("%s: %s[%d]: remote %q is not allowed: every file must be in the config repository", name, l.field, i, ref))
			}
		}
	}
	for i, p := range k.Patches {
		if isRemote(p.Path) {
			errs = append(errs, fmt.Errorf("%s: patches[%d].path: remote %q is not allowed: every file must be in the config repository", name, i, p.Path))
		}
	}
	for i, p := range k.PatchesJson6902 {
		if isRemote(p.Path) {
			errs = append(errs, fmt.Errorf("%s: patchesJson6902[%d].path: remote %q is not allowed: every file must be in the config repository", name, i, p.Path))
		}
	}
	if len(k.OpenAPI) > 0 {
		errs = append(errs, fmt.Errorf("%s: openapi: custom OpenAPI schemas are not supported", name))
	}
	if len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0 {
		errs = append(errs, fmt.Errorf("%s: helmCharts: Helm chart inflation is not supported; render the chart into the repository", name))
	}
	return errors.Join(errs...)
}

// strategicMergePaths are patchesStrategicMerge's entries as strings: each
// is a file's path or an inline patch.
func strategicMergePaths(ps []types.PatchStrategicMerge) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

// checkAliases refuses a YAML file with an anchor whose value contains an
// alias of itself, or whose aliases expand to more values than the file
// could hold written out (maxExpansion). kyaml expands every alias when it
// loads a resource: a recursive one overflows the stack, a fatal error that
// no recover catches, and nested ones grow exponentially. The count is made
// on the parsed node tree, each node's expanded size once, so it costs what
// the file does, whatever else the file holds (a duplicate key, say, which
// decoding would stop at before the bomb). A document that does not parse
// is left to kustomize, which refuses it too, naming the problem.
func checkAliases(name string, b []byte) error {
	if !bytes.ContainsRune(b, '&') || !bytes.ContainsRune(b, '*') {
		return nil // no anchor or no alias
	}
	limit := maxExpansion(len(b))
	d := yamlv3.NewDecoder(bytes.NewReader(b))
	total := 0
	for {
		var doc yamlv3.Node
		if err := d.Decode(&doc); err != nil {
			return nil // the end, or a syntax error kustomize reports
		}
		e := expansion{size: map[*yamlv3.Node]int{}, open: map[*yamlv3.Node]bool{}, limit: limit}
		n, err := e.of(&doc)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if total += n; total > limit {
			return fmt.Errorf("%s: excessive aliasing: the documents expand to more than %d values", name, limit)
		}
	}
}

// maxExpansion is how many values a file of size bytes may expand to
// through aliases: ordinary files share a few labels, never thousands.
func maxExpansion(size int) int { return 4*size + 10_000 }

// expansion counts the values a node tree expands to, aliases followed.
type expansion struct {
	size  map[*yamlv3.Node]int  // node → its expanded size, once known
	open  map[*yamlv3.Node]bool // nodes being counted: an alias to one is a cycle
	limit int
}

func (e *expansion) of(n *yamlv3.Node) (int, error) {
	if n == nil {
		return 0, nil
	}
	if n.Kind == yamlv3.AliasNode {
		if e.open[n.Alias] {
			return 0, fmt.Errorf("anchor %q contains itself", n.Value)
		}
		return e.of(n.Alias)
	}
	if s, ok := e.size[n]; ok {
		return s, nil
	}
	e.open[n] = true
	defer delete(e.open, n)
	total := 1
	for _, c := range n.Content {
		s, err := e.of(c)
		if err != nil {
			return 0, err
		}
		if total += s; total > e.limit {
			return 0, fmt.Errorf("excessive aliasing: more than %d values", e.limit)
		}
	}
	e.size[n] = total
	return total, nil
}

// scpUser matches the "user@" of an scp-style git address.
var scpUser = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@`)

// isRemote reports whether kustomize would fetch ref over the network (a
// git clone or an HTTP GET), following kustomize's own URL parsing.
func isRemote(ref string) bool {
	s := strings.ToLower(strings.TrimSpace(ref))
	if strings.HasPrefix(s, "git::") { // kustomize strips it and clones
		return true
	}
	for _, scheme := range []string{"http://", "https://", "ssh://", "file://", "git://"} {
		if strings.HasPrefix(s, scheme) {
			return true
		}
	}
	return scpUser.MatchString(s) || strings.HasPrefix(s, "github.com/") || strings.HasPrefix(s, "github.com:")
}
