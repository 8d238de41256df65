package render

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

// Variables returns the cluster variables substituted into rendered objects:
// CLUSTER_NAME, CLUSTER_ENVIRONMENT, CLUSTER_REGION, CLUSTER_WAVE and, for each
// cluster label, CLUSTER_LABEL_<KEY> with the key upper-cased and every
// character other than a letter or digit replaced by "_".
func Variables(c *fleet.Cluster) map[string]string {
	vars := map[string]string{
		"CLUSTER_NAME":        c.Name,
		"CLUSTER_ENVIRONMENT": c.Environment,
		"CLUSTER_REGION":      c.Region,
		"CLUSTER_WAVE":        c.Wave,
	}
	for k, v := range c.Labels {
		vars["CLUSTER_LABEL_"+labelVarKey(k)] = v
	}
	return vars
}

// labelVarKey turns a label key into the suffix of its variable name.
func labelVarKey(k string) string {
	b := []byte(strings.ToUpper(k))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// UnknownVariableError reports a ${VAR} that is not a cluster variable.
type UnknownVariableError struct {
	Object string // object ID
	Field  string // field path, e.g. spec.template.spec.containers[0].image
	Name   string // the variable's name, without ${}
}

func (e *UnknownVariableError) Error() string {
	return fmt.Sprintf("%s: %s: unknown variable ${%s} (escape a literal one as $${%s})", e.Object, e.Field, e.Name, e.Name)
}

// substituteObject replaces the variables in every string value of obj, in
// place. It returns one error per unknown variable.
func substituteObject(id string, obj map[string]any, vars map[string]string) []error {
	var errs []error
	walkStrings(obj, "", func(field, s string) (string, bool) {
		out, unknown := substitute(s, vars)
		for _, name := range unknown {
			errs = append(errs, &UnknownVariableError{Object: id, Field: field, Name: name})
		}
		return out, out != s
	})
	return errs
}

// hasVariable reports whether a string value under v contains "${", that
// is, whether substituteObject has anything to do.
func hasVariable(v any) bool {
	switch t := v.(type) {
	case string:
		return strings.Contains(t, "${")
	case map[string]any:
		for _, e := range t {
			if hasVariable(e) {
				return true
			}
		}
	case []any:
		for _, e := range t {
			if hasVariable(e) {
				return true
			}
		}
	}
	return false
}

// walkStrings calls fn on every string value under v, in key order, and
// stores fn's result when it reports a change.
func walkStrings(v any, path string, fn func(field, s string) (string, bool)) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := joinField(path, k)
			if s, ok := t[k].(string); ok {
				if out, changed := fn(p, s); changed {
					t[k] = out
				}
				continue
			}
			walkStrings(t[k], p, fn)
		}
	case []any:
		for i := range t {
			p := path + "[" + strconv.Itoa(i) + "]"
			if s, ok := t[i].(string); ok {
				if out, changed := fn(p, s); changed {
					t[i] = out
				}
				continue
			}
			walkStrings(t[i], p, fn)
		}
	}
}

// plainKey matches a map key that reads well after a dot in a field path.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinField appends key k to field path p.
func joinField(p, k string) string {
	if !plainKey.MatchString(k) {
		return p + "[" + strconv.Quote(k) + "]"
	}
	if p == "" {
		return k
	}
	return p + "." + k
}

// substitute replaces ${NAME} in s with vars[NAME] and $${NAME} with the
// literal ${NAME}. It returns the names of unknown variables, in order of
// appearance. A "${" without a closing brace is left as it is.
func substitute(s string, vars map[string]string) (string, []string) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var unknown []string
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if strings.HasPrefix(s[i:], "${") {
			end := strings.IndexByte(s[i+2:], '}')
			if end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := vars[name]; ok {
					b.WriteString(v)
				} else {
					unknown = append(unknown, name)
					b.WriteString(s[i : i+3+end])
				}
				i += 3 + end
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String(), unknown
}
