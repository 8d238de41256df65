package fleet

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Defaults of optional fields.
const (
	DefaultHealthTimeout = 5 * time.Minute
	DefaultChangeSource  = ChangeSourceTrailers
)

// Change sources of spec.change.source.
const (
	ChangeSourceGitHub   = "github"
	ChangeSourceTrailers = "trailers"
)

// WindowKindDeny is the only window kind: changes are held while it is open,
// except the categories it allows.
const WindowKindDeny = "deny"

// Categories are the change categories, from most to least urgent.
var Categories = []string{"emergency", "standard", "normal", "major"}

// spec holds what later checks need to know about earlier parts of the file.
type spec struct {
	*decoder
	repo     *repoRoot
	loc      *time.Location
	clusters []Cluster
	items    []value        // spec.clusters[i], for lines
	byName   map[string]int // cluster name → first index
	dup      []bool         // clusters[i] repeats an earlier name
}

// fleet decodes the document's top-level mapping.
func (d *decoder) fleet(top value, repo *repoRoot) *Fleet {
	root := d.object(top, "apiVersion", "kind", "metadata", "spec")
	f := &Fleet{}
	d.constant(root.get("apiVersion"), APIVersion)
	d.constant(root.get("kind"), Kind)

	meta := d.object(root.get("metadata"), "name")
	f.Name = d.required(meta.get("name"))
	if f.Name != "" {
		d.dnsLabel(meta.get("name"), f.Name)
	}

	sv := root.get("spec")
	if sv.null() {
		d.addf(sv.line, sv.path, "missing")
		return f
	}
	o := d.object(sv, "timezone", "clusters", "rollout", "windows", "reconcile", "change", "policy")
	s := &spec{decoder: d, repo: repo, byName: map[string]int{}}
	f.Timezone, f.Location = s.timezone(o.get("timezone"))
	s.loc = f.Location
	s.clusterList(o.get("clusters"))
	f.Rollout = s.rollout(o.get("rollout"), o.line)
	f.Clusters = s.clusters
	f.Windows = s.windows(o.get("windows"))
	f.Reconcile = s.reconcile(o.get("reconcile"))
	f.Change = s.change(o.get("change"))
	f.PolicyData = s.policy(o.get("policy"))
	return f
}

func (d *decoder) constant(v value, want string) {
	switch got := d.str(v); {
	case got == "" && (v.null() || v.node.Kind == yaml.ScalarNode):
		d.addf(v.line, v.path, "missing, expected %q", want)
	case got != "" && got != want:
		d.addf(v.line, v.path, "expected %q, got %q", want, got)
	}
}

// dnsLabel checks a name that becomes part of Kubernetes object names and
// label values.
func (d *decoder) dnsLabel(v value, name string) {
	if len(validation.IsDNS1123Label(name)) > 0 {
		d.addf(v.line, v.path, "%q is not a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", name)
	}
}

func (s *spec) timezone(v value) (string, *time.Location) {
	name := s.str(v)
	if name == "" {
		return "", time.UTC
	}
	// "Local" would make the fleet's windows depend on the machine.
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		s.addf(v.line, v.path, "unknown time zone %q, expected an IANA name such as Europe/Berlin or UTC", name)
		return name, time.UTC
	}
	return name, loc
}

func (s *spec) clusterList(v value) {
	items := s.seq(v)
	if len(items) == 0 {
		s.addf(v.line, v.path, "at least one cluster is required")
		return
	}
	for i, item := range items {
		s.clusters = append(s.clusters, s.cluster(item))
		s.items = append(s.items, item)
		s.dup = append(s.dup, false)
		c := &s.clusters[i]
		if c.Name == "" {
			continue
		}
		if first, ok := s.byName[c.Name]; ok {
			s.dup[i] = true
			s.addf(nameLine(item), child(item.path, "name"), "duplicate cluster name %q (first defined at line %d)", c.Name, nameLine(s.items[first]))
			continue
		}
		s.byName[c.Name] = i
	}
}

// nameLine is the line of a list item's name field, or of the item.
func nameLine(item value) int {
	if item.node != nil && item.node.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(item.node.Content); i += 2 {
			if item.node.Content[i].Value == "name" {
				return item.node.Content[i].Line
			}
		}
	}
	return item.line
}

func (s *spec) cluster(v value) Cluster {
	o := s.object(v, "name", "environment", "region", "path", "kubeconfig", "capacity", "labels")
	c := Cluster{
		Name:        s.required(o.get("name")),
		Environment: s.required(o.get("environment")),
		Region:      s.str(o.get("region")),
	}
	if c.Name != "" {
		s.dnsLabel(o.get("name"), c.Name)
	}
	c.Path = s.clusterPath(o.get("path"))
	c.Kubeconfig = s.kubeconfig(o.get("kubeconfig"))
	c.Capacity = s.capacity(o.get("capacity"))
	c.Labels = s.labels(o.get("labels"))
	return c
}

func (s *spec) clusterPath(v value) string {
	p := s.required(v)
	if p == "" {
		return ""
	}
	clean, msg := s.repo.check(p)
	if msg != "" {
		s.addf(v.line, v.path, "%s", msg)
	}
	return clean
}

func (s *spec) kubeconfig(v value) KubeconfigRef {
	const expected = "set exactly one of context, secretRef or inCluster"
	if v.null() {
		s.addf(v.line, v.path, "missing, %s", expected)
		return KubeconfigRef{}
	}
	o := s.object(v, "context", "secretRef", "inCluster")
	k := KubeconfigRef{
		Context:   s.str(o.get("context")),
		InCluster: s.boolean(o.get("inCluster")),
	}
	var set []string
	if k.Context != "" {
		set = append(set, "context")
	}
	if o.has("secretRef") {
		set = append(set, "secretRef")
		ref := s.object(o.get("secretRef"), "name", "namespace", "key")
		k.SecretRef = &SecretRef{
			Name:      s.required(ref.get("name")),
			Namespace: s.required(ref.get("namespace")),
			Key:       s.required(ref.get("key")),
		}
	}
	if k.InCluster {
		set = append(set, "inCluster")
	}
	switch {
	case len(set) == 0 && v.node.Kind == yaml.MappingNode:
		s.addf(v.line, v.path, "%s", expected)
	case len(set) > 1:
		s.addf(v.line, v.path, "%s, got %s", expected, strings.Join(set, " and "))
	}
	return k
}

func (s *spec) capacity(v value) map[string]resource.Quantity {
	es := s.entries(v)
	if len(es) == 0 {
		return nil
	}
	out := make(map[string]resource.Quantity, len(es))
	for _, e := range es {
		if errs := validation.IsQualifiedName(e.key); len(errs) > 0 {
			s.addf(e.line, e.val.path, "%q is not a resource name: %s", e.key, strings.Join(errs, "; "))
			continue
		}
		text := s.str(e.val)
		q, err := resource.ParseQuantity(text)
		switch {
		case err != nil:
			s.addf(e.val.line, e.val.path, "%q is not a quantity, expected e.g. 100, 500m or 200Gi", text)
		case q.Sign() < 0:
			s.addf(e.val.line, e.val.path, "%q is negative", text)
		default:
			out[e.key] = q
		}
	}
	return out
}

func (s *spec) labels(v value) map[string]string {
	es := s.entries(v)
	if len(es) == 0 {
		return nil
	}
	out := make(map[string]string, len(es))
	for _, e := range es {
		if errs := validation.IsQualifiedName(e.key); len(errs) > 0 {
			s.addf(e.line, e.val.path, "%q is not a label key: %s", e.key, strings.Join(errs, "; "))
			continue
		}
		val := s.str(e.val)
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			s.addf(e.val.line, e.val.path, "%q is not a label value: %s", val, strings.Join(errs, "; "))
			continue
		}
		out[e.key] = val
	}
	return out
}

func (s *spec) rollout(v value, specLine int) Rollout {
	o := s.object(v, "waves", "healthTimeout", "failFast", "rollbackOnFailure")
	r := Rollout{
		HealthTimeout:     DefaultHealthTimeout,
		FailFast:          true,
		RollbackOnFailure: s.boolean(o.get("rollbackOnFailure")),
	}
	if ht := o.get("healthTimeout"); !ht.null() {
		if d, ok := s.duration(ht); ok && d == 0 {
			s.addf(ht.line, ht.path, "must be greater than 0")
		} else if ok {
			r.HealthTimeout = d
		}
	}
	if o.has("failFast") {
		r.FailFast = s.boolean(o.get("failFast"))
	}

	wv := o.get("waves")
	items := s.seq(wv)
	if len(items) == 0 {
		if v.null() {
			wv.line = specLine
		}
		s.addf(wv.line, wv.path, "at least one wave is required")
	}
	waveAt := map[string]int{} // wave name → line
	type placement struct {
		wave string // quoted name, or the wave's path when it has none
		line int
	}
	placed := map[string]placement{} // cluster name → the wave that lists it
	for _, item := range items {
		wo := s.object(item, "name", "clusters", "bake", "maxParallel")
		w := Wave{
			Name:        s.required(wo.get("name")),
			MaxParallel: s.integer(wo.get("maxParallel")),
		}
		w.Bake, _ = s.duration(wo.get("bake"))
		if w.Name != "" {
			if first, ok := waveAt[w.Name]; ok {
				s.addf(wo.get("name").line, wo.get("name").path, "duplicate wave name %q (first defined at line %d)", w.Name, first)
			} else {
				waveAt[w.Name] = wo.get("name").line
			}
		}
		if w.MaxParallel < 0 {
			mp := wo.get("maxParallel")
			s.addf(mp.line, mp.path, "must be 0 (all clusters of the wave at once) or more, got %d", w.MaxParallel)
		}
		label := strconv.Quote(w.Name)
		if w.Name == "" {
			label = item.path
		}
		cv := wo.get("clusters")
		members := s.seq(cv)
		if len(members) == 0 {
			s.addf(cv.line, cv.path, "a wave needs at least one cluster")
		}
		for _, m := range members {
			name := s.str(m)
			if name == "" {
				continue
			}
			w.Clusters = append(w.Clusters, name)
			ci, ok := s.byName[name]
			if !ok {
				s.addf(m.line, m.path, "unknown cluster %q, expected one of spec.clusters[].name", name)
				continue
			}
			if prev, ok := placed[name]; ok {
				s.addf(m.line, m.path, "cluster %q is already in wave %s (line %d)", name, prev.wave, prev.line)
				continue
			}
			placed[name] = placement{wave: label, line: m.line}
			s.clusters[ci].Wave = w.Name
		}
		r.Waves = append(r.Waves, w)
	}
	if len(items) > 0 {
		for i, c := range s.clusters {
			if _, ok := placed[c.Name]; c.Name != "" && !s.dup[i] && !ok {
				s.addf(s.items[i].line, s.items[i].path, "cluster %q is in no wave of spec.rollout.waves", c.Name)
			}
		}
	}
	return r
}

func (s *spec) windows(v value) []Window {
	environments := map[string]bool{}
	for _, c := range s.clusters {
		if c.Environment != "" {
			environments[c.Environment] = true
		}
	}
	known := make([]string, 0, len(environments))
	for e := range environments {
		known = append(known, e)
	}
	sort.Strings(known)

	var out []Window
	nameAt := map[string]int{}
	for _, item := range s.seq(v) {
		o := s.object(item, "name", "kind", "schedule", "duration", "environments", "allowCategories")
		w := Window{Name: s.required(o.get("name"))}
		if first, ok := nameAt[w.Name]; ok && w.Name != "" {
			s.addf(o.get("name").line, o.get("name").path, "duplicate window name %q (first defined at line %d)", w.Name, first)
		} else if w.Name != "" {
			nameAt[w.Name] = o.get("name").line
		}

		kv := o.get("kind")
		switch w.Kind = s.str(kv); w.Kind {
		case WindowKindDeny:
		case "":
			if kv.null() || kv.node.Kind == yaml.ScalarNode {
				s.addf(kv.line, kv.path, "missing, expected %q", WindowKindDeny)
			}
		default:
			s.addf(kv.line, kv.path, "%q is not a window kind, expected %q", w.Kind, WindowKindDeny)
		}

		sv := o.get("schedule")
		w.Schedule = s.required(sv)
		if strings.HasPrefix(w.Schedule, "@every") {
			s.addf(sv.line, sv.path, "%q has no fixed start times, expected a cron expression such as \"0 9 * * 1-5\" or @daily", w.Schedule)
		} else if w.Schedule != "" {
			w.Cron = s.cron(sv, w.Schedule)
		}

		dv := o.get("duration")
		if dv.null() {
			s.addf(dv.line, dv.path, "missing, expected a duration such as 9h")
		} else if d, ok := s.duration(dv); ok && d == 0 {
			s.addf(dv.line, dv.path, "must be greater than 0")
		} else {
			w.Duration = d
		}

		for _, ev := range s.seq(o.get("environments")) {
			env := s.str(ev)
			if env == "" {
				continue
			}
			w.Environments = append(w.Environments, env)
			if !environments[env] {
				s.addf(ev.line, ev.path, "no cluster has environment %q (environments: %s)", env, strings.Join(known, ", "))
			}
		}
		for _, cv := range s.seq(o.get("allowCategories")) {
			cat := s.str(cv)
			if cat == "" {
				continue
			}
			w.AllowCategories = append(w.AllowCategories, cat)
			if !slices.Contains(Categories, cat) {
				s.addf(cv.line, cv.path, "%q is not a change category, expected one of %s", cat, strings.Join(Categories, ", "))
			}
		}
		out = append(out, w)
	}
	return out
}

func (s *spec) cron(v value, schedule string) cron.Schedule {
	c, err := parseCron(schedule, s.loc)
	if err != nil {
		s.addf(v.line, v.path, "%q is not a cron schedule: %v", schedule, err)
		return nil
	}
	return c
}

func (s *spec) reconcile(v value) Reconcile {
	o := s.object(v, "schedule")
	r := Reconcile{Schedule: s.str(o.get("schedule"))}
	if r.Schedule != "" {
		r.Cron = s.cron(o.get("schedule"), r.Schedule)
	}
	return r
}

func (s *spec) change(v value) ChangeSource {
	o := s.object(v, "source", "github")
	c := ChangeSource{Source: s.str(o.get("source"))}
	if c.Source == "" {
		c.Source = DefaultChangeSource
	}
	gv := o.get("github")
	g := s.object(gv, "owner", "repo")
	switch c.Source {
	case ChangeSourceGitHub:
		if gv.null() {
			s.addf(gv.line, gv.path, "missing, expected {owner, repo} when source is %q", ChangeSourceGitHub)
			break
		}
		c.GitHub = GitHubRepo{Owner: s.required(g.get("owner")), Repo: s.required(g.get("repo"))}
	case ChangeSourceTrailers:
		c.GitHub = GitHubRepo{Owner: s.str(g.get("owner")), Repo: s.str(g.get("repo"))}
	default:
		sv := o.get("source")
		s.addf(sv.line, sv.path, "%q is not a change source, expected %q or %q", c.Source, ChangeSourceGitHub, ChangeSourceTrailers)
	}
	return c
}

func (s *spec) policy(v value) map[string]any {
	o := s.object(v, "data")
	dv := o.get("data")
	if dv.null() {
		return map[string]any{}
	}
	if dv.node.Kind != yaml.MappingNode {
		s.addf(dv.line, dv.path, "expected a mapping, got %s", describe(dv.node))
		return map[string]any{}
	}
	data, _ := s.plain(dv).(map[string]any)
	return data
}
