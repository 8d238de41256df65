package trust

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/source"
)

// DefaultMaxCommits bounds the commits one rollout carries and judges one by one.
const DefaultMaxCommits = 100

// Judge works out, for a target revision and a trusted base, the rules
// that judge the change and the change itself: every commit between base
// and target, each with its own pull request, approvals, files and edits of
// the rules. It remembers what it read, so that clusters sharing a base
// cost one reading. Safe for concurrent use.
type Judge struct {
	// History holds base, target and every commit between.
	History *source.History
	// Changes reads each commit's change; nil when Fixed is set.
	Changes change.Source
	// Fixed, when set, is the change as a whole (a pull request before it
	// merges, a --change file): commits are not read one by one, and its
	// files and edits of the rules come from base..target.
	Fixed *change.Change
	// Teams fills in the approvers' teams that the rules name; nil: none.
	Teams change.TeamReader
	// SnapshotDir receives the snapshots of bases.
	SnapshotDir string
	// Pinned rules, when set, judge every change: the operator's, which
	// the config repository cannot change.
	Pinned *Rules
	// MaxCommits bounds a range; DefaultMaxCommits when zero.
	MaxCommits int

	mu      sync.Mutex
	rules   map[string]*Rules         // base revision → its rules
	digests map[string]digest         // commit → its rules' digest
	changes map[string]*change.Change // commit → its change
	errs    map[string]error          // commit → why its change could not be read
}

// Basis is what one cluster's rollout is judged on.
type Basis struct {
	// Base is the trusted base's revision; "" at bootstrap and for pinned
	// rules without one.
	Base  string
	Rules *Rules
	// Change is what the cluster receives (Commits, newest first).
	Change *change.Change
	// ChangeErr says why the change could not be read: GitHub unavailable
	// (change.ErrUnavailable: hold) or an invalid change (deny).
	ChangeErr error
}

// For returns the basis of target for a cluster whose trusted base is base
// ("" when it runs nothing yet: bootstrap, judged by target's own rules).
// targetRules are the target's rules (its edits are measured against the
// base's). An error is a failure to read the repository: nothing can be
// judged, and nothing is allowed.
func (j *Judge) For(ctx context.Context, base, target string, targetRules *Rules) (*Basis, error) {
	b := &Basis{Base: base}
	switch {
	case j.Pinned != nil:
		b.Rules = j.Pinned
	case base == "":
		boot := *targetRules
		boot.Origin = OriginBootstrap
		b.Rules = &boot
	default:
		r, err := j.RulesAt(ctx, base)
		if err != nil {
			return nil, err
		}
		b.Rules = r
	}
	if j.Fixed != nil {
		ch, err := j.fixed(base, target, b.Rules, targetRules)
		if err != nil {
			return nil, err
		}
		b.Change = ch
	} else {
		commits, err := j.commits(base, target)
		if err != nil {
			return nil, err
		}
		if b.Change, b.ChangeErr, err = j.carried(ctx, base, commits, b.Rules, targetRules); err != nil {
			return nil, err
		}
	}
	if b.Change != nil && b.ChangeErr == nil && j.Teams != nil {
		if teams := b.Rules.Teams(); len(teams) > 0 {
			b.ChangeErr = change.AddTeams(ctx, j.Teams, b.Change, teams)
		}
	}
	return b, nil
}

// commits lists what target carries since base, newest first: target alone
// at bootstrap and when base is target.
func (j *Judge) commits(base, target string) ([]string, error) {
	if base == "" || base == target {
		return []string{target}, nil
	}
	max := j.MaxCommits
	if max <= 0 {
		max = DefaultMaxCommits
	}
	return j.History.FirstParents(base, target, max)
}

// RulesAt loads the rules of a base revision from its snapshot, once.
func (j *Judge) RulesAt(ctx context.Context, base string) (*Rules, error) {
	j.mu.Lock()
	r, ok := j.rules[base]
	j.mu.Unlock()
	if ok {
		return r, nil
	}
	snap, err := j.History.Snapshot(ctx, base, j.SnapshotDir)
	if err != nil {
		return nil, fmt.Errorf("trusted base %s: %w", source.Short(base), err)
	}
	if r, err = Load(OriginBase, base, snap.Dir); err != nil {
		return nil, fmt.Errorf("trusted base %s: %w", source.Short(base), err)
	}
	j.mu.Lock()
	if j.rules == nil {
		j.rules = map[string]*Rules{}
	}
	j.rules[base] = r
	j.mu.Unlock()
	return r, nil
}

// fixed is the Fixed change with the files and rule edits of base..target.
func (j *Judge) fixed(base, target string, rules, targetRules *Rules) (*change.Change, error) {
	ch := *j.Fixed
	ch.PreviousRevision = base
	files, err := j.History.ChangedFiles(base, target)
	if err != nil {
		return nil, err
	}
	ch.Files = owned(files, rules)
	ch.Governance = nil
	if base != "" {
		ch.Governance = rules.Edits(targetRules)
	}
	ch.Commits = nil
	return &ch, nil
}

// carried reads the change of every commit, joins the commits of one pull
// request (a rebase merge lands several), and sums them up: the target's
// change with the strictest category, every file, the net edits of the
// rules, and each change in Commits. The first failure to read a change is
// returned as the second result (Unavailable ones first: they hold).
func (j *Judge) carried(ctx context.Context, base string, commits []string, rules, targetRules *Rules) (*change.Change, error, error) {
	var list []change.Change
	byPR := map[int]int{} // pull request → index in list
	var readErr error
	for _, sha := range commits {
		ch, err := j.changeOf(ctx, sha)
		if err != nil {
			if readErr == nil || errors.Is(err, change.ErrUnavailable) && !errors.Is(readErr, change.ErrUnavailable) {
				readErr = err
			}
			continue
		}
		c := *ch
		parent, err := j.History.FirstParent(sha)
		if err != nil {
			return nil, nil, err
		}
		if base == "" {
			parent = "" // bootstrap: every file is new, no rule was there
		}
		if base == sha {
			// The cluster runs target already: its rules are the base, and
			// nothing new is carried that could edit them.
			parent = ""
		}
		files, err := j.History.ChangedFiles(parent, sha)
		if err != nil {
			return nil, nil, err
		}
		c.Files = owned(files, rules)
		if parent != "" && j.Pinned == nil {
			if c.Governance, err = j.edits(parent, sha); err != nil {
				return nil, nil, err
			}
		}
		if pr := c.PullRequest; pr != nil {
			if i, ok := byPR[pr.Number]; ok {
				list[i].Files = mergeFiles(list[i].Files, c.Files)
				list[i].Governance = mergeStrings(list[i].Governance, c.Governance)
				continue
			}
			byPR[pr.Number] = len(list)
		}
		list = append(list, c)
	}
	if readErr != nil {
		return nil, readErr, nil
	}
	top := list[0]
	top.PreviousRevision = base
	cats := make([]string, len(list))
	var files []change.File
	for i, c := range list {
		cats[i] = c.Category
		files = mergeFiles(files, c.Files)
	}
	top.Category = change.Strictest(cats...)
	top.Files = files
	top.Governance = nil
	if base != "" {
		top.Governance = rules.Edits(targetRules)
	}
	top.Commits = list
	return &top, nil, nil
}

// changeOf is commit sha's change, read once.
func (j *Judge) changeOf(ctx context.Context, sha string) (*change.Change, error) {
	j.mu.Lock()
	ch, ok := j.changes[sha]
	err := j.errs[sha]
	j.mu.Unlock()
	if ok || err != nil {
		return ch, err
	}
	ch, err = j.Changes.Change(ctx, sha)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.changes == nil {
		j.changes, j.errs = map[string]*change.Change{}, map[string]error{}
	}
	if err != nil {
		j.errs[sha] = err
		return nil, err
	}
	j.changes[sha] = ch
	return ch, nil
}

// edits names what commit sha edits of the rules at parent.
func (j *Judge) edits(parent, sha string) ([]string, error) {
	a, err := j.digestAt(parent)
	if err != nil {
		return nil, err
	}
	b, err := j.digestAt(sha)
	if err != nil {
		return nil, err
	}
	return a.edits(b), nil
}

// digestAt digests the rules of commit sha from the object store.
func (j *Judge) digestAt(sha string) (digest, error) {
	j.mu.Lock()
	d, ok := j.digests[sha]
	j.mu.Unlock()
	if ok {
		return d, nil
	}
	data, found, err := j.History.ReadFile(sha, fleet.FileName, MaxRuleFile)
	if err != nil {
		return digest{}, err
	}
	var f *fleet.Fleet
	var parseErr error
	if found {
		f, parseErr = fleet.Parse(fleet.FileName, data, "")
	} else {
		parseErr = errors.New("missing")
	}
	files, err := j.History.Files(sha, PoliciesDir, CodeOwnersPaths, MaxRuleFile)
	if err != nil {
		return digest{}, err
	}
	d = digestOf(f, parseErr, files)
	j.mu.Lock()
	if j.digests == nil {
		j.digests = map[string]digest{}
	}
	j.digests[sha] = d
	j.mu.Unlock()
	return d, nil
}

// owned pairs paths with their owners under rules.
func owned(paths []string, rules *Rules) []change.File {
	out := make([]change.File, 0, len(paths))
	for _, p := range paths {
		out = append(out, change.File{Path: p, Owners: rules.OwnersOf(p)})
	}
	return out
}

func mergeFiles(a, b []change.File) []change.File {
	seen := map[string]bool{}
	var out []change.File
	for _, f := range slices.Concat(a, b) {
		if !seen[f.Path] {
			seen[f.Path] = true
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Path < out[k].Path })
	return out
}

func mergeStrings(a, b []string) []string {
	out := slices.Concat(a, b)
	sort.Strings(out)
	return slices.Compact(out)
}
