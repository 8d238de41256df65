// Package trust decides which rules judge a change and what a change
// carries.
//
// A change is never judged by rules it can edit itself. The rules are the
// repository's policies/, its CODEOWNERS, and in fleet.yaml the policy data,
// the windows and time zone, the change source and each cluster's
// environment and capacity. They come from the trusted base: the revision a
// cluster runs (the agent reads it from the cluster's record), a pull
// request's base, or the CLI's --base; or from a directory the operator
// pins. What a change edits of them is named in change.governance, and a
// built-in policy asks more approvals for it.
//
// What a cluster receives is every commit between the revision it runs and
// the target: each is judged on its own (change.commits), so that a held
// change cannot ride along inside a later one.
package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hmarr/codeowners"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

// Origins of Rules.
const (
	// OriginBase: the rules of a trusted base revision.
	OriginBase = "base"
	// OriginPinned: rules the operator pinned in the agent config.
	OriginPinned = "pinned"
	// OriginBootstrap: nothing was applied yet, so the target's own rules
	// judge it; plans, status and records say so.
	OriginBootstrap = "bootstrap"
)

// MaxRuleFile caps each policy file, CODEOWNERS and fleet.yaml read as rules.
const MaxRuleFile = 1 << 20

// PoliciesDir is the folder of a config repository's own policies.
const PoliciesDir = "policies"

// CodeOwnersPaths are where GitHub looks for CODEOWNERS, in its order.
var CodeOwnersPaths = []string{".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"}

// Rules are what a change is judged by.
type Rules struct {
	Origin   string
	Revision string // the revision they come from; "" for a pinned directory
	// Fleet is the rules' fleet.yaml: policy data, windows, time zone,
	// change source, clusters' environment and capacity.
	Fleet *fleet.Fleet
	// PolicyDir holds the repository's own policies; "" when none.
	PolicyDir string
	// Owners is CODEOWNERS; nil when there is none.
	Owners codeowners.Ruleset
	// digest is what Edits compares.
	digest digest
}

// Load reads the rules of the config repository (or pinned directory) dir.
func Load(origin, revision, dir string) (*Rules, error) {
	load := fleet.Load
	if origin == OriginPinned {
		load = fleet.LoadRules // a directory of rules holds no manifests
	}
	f, err := load(dir)
	if err != nil {
		return nil, err
	}
	r := &Rules{Origin: origin, Revision: revision, Fleet: f}
	files, err := ruleFiles(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Lstat(filepath.Join(dir, PoliciesDir)); err == nil && st.IsDir() {
		r.PolicyDir = filepath.Join(dir, PoliciesDir)
	}
	if r.Owners, err = parseOwners(files); err != nil {
		return nil, err
	}
	r.digest = digestOf(f, nil, files)
	return r, nil
}

// ruleFiles reads the rule files of dir: everything under policies/ and
// CODEOWNERS; regular files only (a symbolic link could read anything on
// the machine), each at most MaxRuleFile bytes.
func ruleFiles(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	read := func(rel string) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file (rules are read from regular files only)", rel)
		}
		if st.Size() > MaxRuleFile {
			return fmt.Errorf("%s: %d bytes, over the %d byte limit", rel, st.Size(), MaxRuleFile)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = b
		return nil
	}
	for _, p := range CodeOwnersPaths {
		if err := read(p); err != nil {
			return nil, err
		}
	}
	root := filepath.Join(dir, PoliciesDir)
	if st, err := os.Lstat(root); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", PoliciesDir)
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return nil
		}
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return read(filepath.ToSlash(rel))
	})
	return out, err
}

// parseOwners parses the CODEOWNERS GitHub would use: the first of
// CodeOwnersPaths that exists.
func parseOwners(files map[string][]byte) (codeowners.Ruleset, error) {
	for _, p := range CodeOwnersPaths {
		b, ok := files[p]
		if !ok {
			continue
		}
		rs, err := codeowners.ParseFile(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return rs, nil
	}
	return nil, nil
}

// OwnersOf returns the owners CODEOWNERS gives path ("@user", "@org/team",
// emails): the last matching rule's, as on GitHub; none without a match.
func (r *Rules) OwnersOf(p string) []string {
	out := []string{}
	if r == nil || r.Owners == nil {
		return out
	}
	rule, err := r.Owners.Match(p)
	if err != nil || rule == nil {
		return out
	}
	for _, o := range rule.Owners {
		out = append(out, o.String())
	}
	return out
}

// Teams are the teams ("org/slug") the rules name: in the policy data's
// approvers and as code owners. Their members are what the policies need.
func (r *Rules) Teams() []string {
	set := map[string]bool{}
	if rules, ok := r.Fleet.PolicyData["approvers"].([]any); ok {
		for _, rule := range rules {
			m, _ := rule.(map[string]any)
			teams, _ := m["teams"].([]any)
			for _, t := range teams {
				if s, ok := t.(string); ok && strings.Contains(s, "/") {
					set[strings.ToLower(strings.TrimPrefix(s, "@"))] = true
				}
			}
		}
	}
	for _, rule := range r.Owners {
		for _, o := range rule.Owners {
			if o.Type == codeowners.TeamOwner {
				set[strings.ToLower(o.Value)] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Cluster returns cluster c as the rules see it: its environment, capacity
// and labels from the rules' fleet; c itself when the rules do not know it
// (a cluster the change adds, which Edits names).
func (r *Rules) Cluster(c *fleet.Cluster) *fleet.Cluster {
	rc := r.Fleet.ClusterByName(c.Name)
	if rc == nil {
		return c
	}
	judged := *c
	judged.Environment, judged.Capacity, judged.Labels = rc.Environment, rc.Capacity, rc.Labels
	return &judged
}

// Judging returns the fleet the policies see for a target fleet: the
// target's clusters and waves with the rules' policy data, windows, time
// zone and change source.
func (r *Rules) Judging(target *fleet.Fleet) *fleet.Fleet {
	f := *target
	f.PolicyData, f.Windows, f.Timezone, f.Location, f.Change = r.Fleet.PolicyData, r.Fleet.Windows, r.Fleet.Timezone, r.Fleet.Location, r.Fleet.Change
	return &f
}

// digest is what the rules are made of, comparable field by field: fleet
// fields by their canonical JSON, files by their SHA-256.
type digest struct {
	fields map[string]string
	files  map[string]string
}

// digestOf digests a fleet (nil with parseErr when fleet.yaml is invalid)
// and rule files.
func digestOf(f *fleet.Fleet, parseErr error, files map[string][]byte) digest {
	d := digest{fields: map[string]string{}, files: map[string]string{}}
	for p, b := range files {
		sum := sha256.Sum256(b)
		d.files[p] = hex.EncodeToString(sum[:])
	}
	if f == nil {
		d.fields[fleet.FileName] = "invalid: " + fmt.Sprint(parseErr)
		return d
	}
	js := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	d.fields["spec.timezone"] = f.Timezone
	d.fields["spec.policy.data"] = js(f.PolicyData)
	d.fields["spec.change"] = js(f.Change)
	type window struct {
		Name, Kind, Schedule, Duration string
		Environments, AllowCategories  []string
	}
	var ws []window
	for _, w := range f.Windows {
		ws = append(ws, window{w.Name, w.Kind, w.Schedule, w.Duration.String(), w.Environments, w.AllowCategories})
	}
	d.fields["spec.windows"] = js(ws)
	for _, c := range f.Clusters {
		capacity := map[string]string{}
		for k, q := range c.Capacity {
			capacity[k] = q.String()
		}
		d.fields[fmt.Sprintf("spec.clusters[%s].environment", c.Name)] = c.Environment
		d.fields[fmt.Sprintf("spec.clusters[%s].capacity", c.Name)] = js(capacity)
	}
	return d
}

// edits names what changes from d to next, sorted: fleet fields and rule
// files. A cluster next adds is an edit (its environment and capacity are
// new rules); one it removes is not (nothing is judged there).
func (d digest) edits(next digest) []string {
	var out []string
	for k, v := range next.fields {
		if old, ok := d.fields[k]; !ok || old != v {
			if k == fleet.FileName || strings.HasPrefix(k, "spec.") {
				out = append(out, k)
			}
		}
	}
	if _, ok := d.fields[fleet.FileName]; ok {
		if _, still := next.fields[fleet.FileName]; !still {
			out = append(out, fleet.FileName) // fixed a broken fleet.yaml
		}
	}
	for p, h := range next.files {
		if d.files[p] != h {
			out = append(out, p)
		}
	}
	for p := range d.files {
		if _, ok := next.files[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Edits names what target edits of the rules r: fleet.yaml fields
// ("spec.policy.data", "spec.windows", "spec.clusters[prod].environment"…)
// and rule files ("policies/extra.rego", "CODEOWNERS"). Empty for pinned
// rules, which the config repository cannot change.
func (r *Rules) Edits(target *Rules) []string {
	if r.Origin == OriginPinned {
		return nil
	}
	return r.digest.edits(target.digest)
}

// Gates returns the analyses that gate cluster c of target and the
// Prometheus to measure them on. The rules' fleet comes first: the
// analyses it names for the cluster (its wave's and its own) gate it with
// the rules' queries and conditions, on the rules' Prometheus for the
// cluster when they name one. Analyses only target names are added with
// target's definitions. A change can add a gate; it cannot remove, weaken
// or redirect one the rules hold.
func (r *Rules) Gates(target *fleet.Fleet, c *fleet.Cluster) ([]*fleet.Analysis, *fleet.Prometheus) {
	var gates []*fleet.Analysis
	var rc *fleet.Cluster
	if r.Fleet != nil {
		if rc = r.Fleet.ClusterByName(c.Name); rc != nil {
			gates = r.Fleet.Gates(rc)
		}
	}
	for _, a := range target.Gates(c) {
		if !slices.ContainsFunc(gates, func(g *fleet.Analysis) bool { return g.Name == a.Name }) {
			gates = append(gates, a)
		}
	}
	prom := c.Prometheus
	if rc != nil && rc.Prometheus != nil {
		prom = rc.Prometheus
	}
	return gates, prom
}
