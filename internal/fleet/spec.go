package fleet

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/convoy-gitops/convoy/internal/yamlfile"
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

// spec checks what a decoded fleet.yaml means and builds the Fleet; it
// holds what later checks need to know about earlier parts of the file.
type spec struct {
	doc      *yamlfile.Doc
	repo     *repoRoot
	loc      *time.Location
	clusters []Cluster
	byName   map[string]int // cluster name → first index
	dup      []bool         // clusters[i] repeats an earlier name
	// noPrometheus are the clusters already reported for having no
	// Prometheus to measure their analyses.
	noPrometheus map[string]bool
}

var (
	child = yamlfile.Child
	index = yamlfile.Index
)

func (s *spec) addf(path, format string, args ...any) { s.doc.Addf(path, format, args...) }

// required returns a string field, reporting it missing when it is empty
// and decoding found nothing else wrong with it.
func (s *spec) required(path, v string) string {
	if v == "" && !s.doc.Failed(path) {
		s.addf(path, "missing")
	}
	return v
}

// build checks the decoded file ff and returns its Fleet.
func build(doc *yamlfile.Doc, ff *fleetFile, repo *repoRoot) *Fleet {
	s := &spec{doc: doc, repo: repo, byName: map[string]int{}, noPrometheus: map[string]bool{}}
	f := &Fleet{}
	s.constant("apiVersion", ff.APIVersion, APIVersion)
	s.constant("kind", ff.Kind, Kind)
	f.Name = s.required("metadata.name", ff.Metadata.Name)
	if f.Name != "" {
		s.dnsLabel("metadata.name", f.Name)
	}
	sp := ff.Spec
	if sp == nil {
		s.addf("spec", "missing")
		return f
	}
	f.Timezone, f.Location = s.timezone(sp.Timezone)
	s.loc = f.Location
	s.clusterList(sp.Clusters)
	f.Rollout = s.rollout(&sp.Rollout)
	s.analysis(sp, &f.Rollout)
	f.Clusters = s.clusters
	f.Windows = s.windows(sp.Windows)
	f.Reconcile = s.reconcile(sp.Reconcile)
	f.Change = s.change(sp.Change)
	f.PolicyData = sp.Policy.Data
	if f.PolicyData == nil {
		f.PolicyData = map[string]any{}
	}
	return f
}

func (s *spec) constant(path, got, want string) {
	switch {
	case got == "" && !s.doc.Failed(path):
		s.addf(path, "missing, expected %q", want)
	case got != "" && got != want:
		s.addf(path, "expected %q, got %q", want, got)
	}
}

// dnsLabel checks a name that becomes part of Kubernetes object names and
// label values.
func (s *spec) dnsLabel(path, name string) {
	if len(validation.IsDNS1123Label(name)) > 0 {
		s.addf(path, "%q is not a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", name)
	}
}

func (s *spec) timezone(name string) (string, *time.Location) {
	if name == "" {
		return "", time.UTC
	}
	// "Local" would make the fleet's windows depend on the machine.
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		s.addf("spec.timezone", "unknown time zone %q, expected an IANA name such as Europe/Berlin or UTC", name)
		return name, time.UTC
	}
	return name, loc
}

func (s *spec) clusterList(cs []clusterFile) {
	const path = "spec.clusters"
	if len(cs) == 0 {
		s.addf(path, "at least one cluster is required")
		return
	}
	for i := range cs {
		p := index(path, i)
		s.clusters = append(s.clusters, s.cluster(p, &cs[i]))
		s.dup = append(s.dup, false)
		c := &s.clusters[i]
		if c.Name == "" {
			continue
		}
		if first, ok := s.byName[c.Name]; ok {
			s.dup[i] = true
			s.addf(p+".name", "duplicate cluster name %q (first defined at line %d)", c.Name, s.doc.Line(index(path, first)+".name"))
			continue
		}
		s.byName[c.Name] = i
	}
}

func (s *spec) cluster(p string, cf *clusterFile) Cluster {
	c := Cluster{
		Name:        s.required(p+".name", cf.Name),
		Environment: s.required(p+".environment", cf.Environment),
		Region:      cf.Region,
	}
	if c.Name != "" {
		s.dnsLabel(p+".name", c.Name)
	}
	c.Path = s.clusterPath(p+".path", cf.Path)
	c.Kubeconfig = s.kubeconfig(p+".kubeconfig", cf.Kubeconfig)
	c.Capacity = s.capacity(p+".capacity", cf.Capacity)
	c.Labels = s.labels(p+".labels", cf.Labels)
	return c
}

func (s *spec) clusterPath(path, p string) string {
	if s.required(path, p) == "" {
		return ""
	}
	clean, msg := s.repo.check(p)
	if msg != "" {
		s.addf(path, "%s", msg)
	}
	return clean
}

func (s *spec) kubeconfig(p string, kf *kubeconfigFile) KubeconfigRef {
	const expected = "set exactly one of context, secretRef or inCluster"
	if kf == nil {
		s.addf(p, "missing, %s", expected)
		return KubeconfigRef{}
	}
	k := KubeconfigRef{Context: kf.Context, InCluster: kf.InCluster}
	var set []string
	if k.Context != "" {
		set = append(set, "context")
	}
	if ref := kf.SecretRef; ref != nil {
		set = append(set, "secretRef")
		rp := p + ".secretRef"
		k.SecretRef = &SecretRef{
			Name:      s.required(rp+".name", ref.Name),
			Namespace: s.required(rp+".namespace", ref.Namespace),
			Key:       s.required(rp+".key", ref.Key),
		}
	}
	if k.InCluster {
		set = append(set, "inCluster")
	}
	switch {
	case len(set) == 0 && !s.doc.Failed(p):
		s.addf(p, "%s", expected)
	case len(set) > 1:
		s.addf(p, "%s, got %s", expected, strings.Join(set, " and "))
	}
	return k
}

// validKeys lists the keys of the mapping at p, in file order, that are
// qualified names (each other one is a problem: not a what) and whose
// values decoded.
func (s *spec) validKeys(p, what string) []string {
	var out []string
	for _, key := range s.doc.Keys(p) {
		kp := child(p, key)
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			s.addf(kp, "%q is not a %s: %s", key, what, strings.Join(errs, "; "))
			continue
		}
		if !s.doc.Failed(kp) {
			out = append(out, key)
		}
	}
	return out
}

func (s *spec) capacity(p string, m map[string]string) map[string]resource.Quantity {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]resource.Quantity, len(m))
	for _, key := range s.validKeys(p, "resource name") {
		kp := child(p, key)
		text := m[key]
		q, err := resource.ParseQuantity(text)
		switch {
		case err != nil:
			s.addf(kp, "%q is not a quantity, expected e.g. 100, 500m or 200Gi", text)
		case q.Sign() < 0:
			s.addf(kp, "%q is negative", text)
		default:
			out[key] = q
		}
	}
	return out
}

func (s *spec) labels(p string, m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for _, key := range s.validKeys(p, "label key") {
		kp := child(p, key)
		val := m[key]
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			s.addf(kp, "%q is not a label value: %s", val, strings.Join(errs, "; "))
			continue
		}
		out[key] = val
	}
	return out
}

func (s *spec) rollout(rf *rolloutFile) Rollout {
	const p = "spec.rollout"
	r := Rollout{
		HealthTimeout:     DefaultHealthTimeout,
		FailFast:          true,
		RollbackOnFailure: rf.RollbackOnFailure,
	}
	if hp := p + ".healthTimeout"; s.doc.Has(hp) && !s.doc.Failed(hp) {
		if rf.HealthTimeout.Duration == 0 {
			s.addf(hp, "must be greater than 0")
		} else {
			r.HealthTimeout = rf.HealthTimeout.Duration
		}
	}
	if rf.FailFast != nil {
		r.FailFast = *rf.FailFast
	}

	wp := p + ".waves"
	if len(rf.Waves) == 0 {
		s.addf(wp, "at least one wave is required")
	}
	waveAt := map[string]int{} // wave name → line
	type placement struct {
		wave string // quoted name, or the wave's path when it has none
		line int
	}
	placed := map[string]placement{} // cluster name → the wave that lists it
	for i := range rf.Waves {
		wf, ip := &rf.Waves[i], index(wp, i)
		w := Wave{
			Name:        s.required(ip+".name", wf.Name),
			MaxParallel: wf.MaxParallel,
			Bake:        wf.Bake.Duration,
		}
		if w.Name != "" {
			if first, ok := waveAt[w.Name]; ok {
				s.addf(ip+".name", "duplicate wave name %q (first defined at line %d)", w.Name, first)
			} else {
				waveAt[w.Name] = s.doc.Line(ip + ".name")
			}
		}
		if w.MaxParallel < 0 {
			s.addf(ip+".maxParallel", "must be 0 (all clusters of the wave at once) or more, got %d", w.MaxParallel)
		}
		label := strconv.Quote(w.Name)
		if w.Name == "" {
			label = ip
		}
		cp := ip + ".clusters"
		if len(wf.Clusters) == 0 {
			s.addf(cp, "a wave needs at least one cluster")
		}
		for j, name := range wf.Clusters {
			if name == "" {
				continue
			}
			mp := index(cp, j)
			w.Clusters = append(w.Clusters, name)
			ci, ok := s.byName[name]
			if !ok {
				s.addf(mp, "unknown cluster %q, expected one of spec.clusters[].name", name)
				continue
			}
			if prev, ok := placed[name]; ok {
				s.addf(mp, "cluster %q is already in wave %s (line %d)", name, prev.wave, prev.line)
				continue
			}
			placed[name] = placement{wave: label, line: s.doc.Line(mp)}
			s.clusters[ci].Wave = w.Name
		}
		r.Waves = append(r.Waves, w)
	}
	if len(rf.Waves) > 0 {
		for i, c := range s.clusters {
			if _, ok := placed[c.Name]; c.Name != "" && !s.dup[i] && !ok {
				s.addf(index("spec.clusters", i), "cluster %q is in no wave of spec.rollout.waves", c.Name)
			}
		}
	}
	return r
}

func (s *spec) windows(wfs []windowFile) []Window {
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
	for i := range wfs {
		wf, p := &wfs[i], index("spec.windows", i)
		w := Window{Name: s.required(p+".name", wf.Name)}
		if first, ok := nameAt[w.Name]; ok && w.Name != "" {
			s.addf(p+".name", "duplicate window name %q (first defined at line %d)", w.Name, first)
		} else if w.Name != "" {
			nameAt[w.Name] = s.doc.Line(p + ".name")
		}

		switch w.Kind = wf.Kind; w.Kind {
		case WindowKindDeny:
		case "":
			if !s.doc.Failed(p + ".kind") {
				s.addf(p+".kind", "missing, expected %q", WindowKindDeny)
			}
		default:
			s.addf(p+".kind", "%q is not a window kind, expected %q", w.Kind, WindowKindDeny)
		}

		w.Schedule = s.required(p+".schedule", wf.Schedule)
		if strings.HasPrefix(w.Schedule, "@every") {
			s.addf(p+".schedule", "%q has no fixed start times, expected a cron expression such as \"0 9 * * 1-5\" or @daily", w.Schedule)
		} else if w.Schedule != "" {
			w.Cron = s.cron(p+".schedule", w.Schedule)
		}

		switch dp := p + ".duration"; {
		case s.doc.Failed(dp):
		case !s.doc.Has(dp):
			s.addf(dp, "missing, expected a duration such as 9h")
		case wf.Duration.Duration == 0:
			s.addf(dp, "must be greater than 0")
		default:
			w.Duration = wf.Duration.Duration
		}

		for j, env := range wf.Environments {
			if env == "" {
				continue
			}
			w.Environments = append(w.Environments, env)
			if !environments[env] {
				s.addf(index(p+".environments", j), "no cluster has environment %q (environments: %s)", env, strings.Join(known, ", "))
			}
		}
		for j, cat := range wf.AllowCategories {
			if cat == "" {
				continue
			}
			w.AllowCategories = append(w.AllowCategories, cat)
			if !slices.Contains(Categories, cat) {
				s.addf(index(p+".allowCategories", j), "%q is not a change category, expected one of %s", cat, strings.Join(Categories, ", "))
			}
		}
		out = append(out, w)
	}
	return out
}

func (s *spec) cron(path, schedule string) cron.Schedule {
	c, err := parseCron(schedule, s.loc)
	if err != nil {
		s.addf(path, "%q is not a cron schedule: %v", schedule, err)
		return nil
	}
	return c
}

func (s *spec) reconcile(rf reconcileFile) Reconcile {
	r := Reconcile{Schedule: rf.Schedule}
	if r.Schedule != "" {
		r.Cron = s.cron("spec.reconcile.schedule", r.Schedule)
	}
	return r
}

func (s *spec) change(cf changeFile) ChangeSource {
	const p = "spec.change"
	c := ChangeSource{Source: cf.Source}
	if c.Source == "" {
		c.Source = DefaultChangeSource
	}
	switch c.Source {
	case ChangeSourceGitHub:
		if cf.GitHub == nil {
			s.addf(p+".github", "missing, expected {owner, repo} when source is %q", ChangeSourceGitHub)
			break
		}
		c.GitHub = GitHubRepo{Owner: s.required(p+".github.owner", cf.GitHub.Owner), Repo: s.required(p+".github.repo", cf.GitHub.Repo)}
	case ChangeSourceTrailers:
		if cf.GitHub != nil {
			c.GitHub = GitHubRepo{Owner: cf.GitHub.Owner, Repo: cf.GitHub.Repo}
		}
	default:
		s.addf(p+".source", "%q is not a change source, expected %q or %q", c.Source, ChangeSourceGitHub, ChangeSourceTrailers)
	}
	return c
}
