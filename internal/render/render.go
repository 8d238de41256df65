package render

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/convoy-gitops/convoy/internal/fleet"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/resid"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"
)

// Result is one cluster's rendered manifests.
type Result struct {
	Cluster string // the cluster's name
	// Objects are sorted by kind rank then ID (see the package doc), each ID
	// once, with the cluster variables substituted.
	Objects []*unstructured.Unstructured
	// Hash is the hex SHA-256 of the objects' canonical JSON, in order; equal
	// renders have equal hashes, in any process.
	Hash string
}

// Budgets of one cluster's render, when the Renderer's are zero.
const (
	DefaultTimeout    = 2 * time.Minute
	DefaultMaxObjects = 20_000
	DefaultMaxBytes   = 128 << 20
)

// Renderer renders clusters of a config repository with kustomize. The zero
// value is ready to use and safe for concurrent use.
type Renderer struct {
	// Parallelism bounds the clusters All renders at once; 0 means GOMAXPROCS.
	Parallelism int
	// Timeout bounds one cluster's render; DefaultTimeout when zero.
	Timeout time.Duration
	// MaxObjects and MaxBytes (of the objects' JSON) cap one cluster's
	// render; DefaultMaxObjects and DefaultMaxBytes when zero.
	MaxObjects int
	MaxBytes   int64
}

// BudgetError is a render over one of its budgets.
type BudgetError struct {
	Cluster string
	What    string // "objects", "bytes" or "time"
	Limit   string
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("cluster %s: the render is over its budget of %s %s", e.Cluster, e.Limit, e.What)
}

// Cluster renders cluster c of fleet f from the config repository repoDir.
// Nothing outside repoDir is read and nothing is fetched (see the package
// doc). f is the fleet c belongs to; nothing of it is needed today.
func (r *Renderer) Cluster(ctx context.Context, repoDir string, f *fleet.Fleet, c *fleet.Cluster) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cache, err := newRepoCache(repoDir)
	if err != nil {
		return nil, err
	}
	return r.cluster(ctx, cache, c)
}

// cluster renders cluster c of the repository that cache reads.
func (r *Renderer) cluster(ctx context.Context, cache *repoCache, c *fleet.Cluster) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := path.Clean(filepath.ToSlash(c.Path))
	if dir == "" || path.IsAbs(dir) || dir == ".." || strings.HasPrefix(dir, "../") {
		return nil, fmt.Errorf("path %q is outside the repository", c.Path)
	}
	timeout := cmp.Or(r.Timeout, DefaultTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fsys := cache.fs()
	fsys.ctx = ctx
	// kustomize takes no context: it runs apart, and every file it reads
	// checks the deadline, so a render past it stops at its next read.
	type built struct {
		objs []*unstructured.Unstructured
		err  error
	}
	done := make(chan built, 1)
	go func() {
		objs, err := build(fsys, filepath.Join(fsys.root, filepath.FromSlash(dir)))
		done <- built{objs, err}
	}()
	var objs []*unstructured.Unstructured
	select {
	case b := <-done:
		if b.err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, &BudgetError{Cluster: c.Name, What: "time", Limit: timeout.String()}
			}
			return nil, b.err
		}
		objs = b.objs
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &BudgetError{Cluster: c.Name, What: "time", Limit: timeout.String()}
		}
		return nil, ctx.Err()
	}
	if max := cmp.Or(r.MaxObjects, DefaultMaxObjects); len(objs) > max {
		return nil, &BudgetError{Cluster: c.Name, What: "objects", Limit: fmt.Sprintf("%d (it has %d)", max, len(objs))}
	}
	locate := func(kind, name string) []string { return definingFiles(fsys, kind, name) }
	objs, err := finish(objs, Variables(c), locate)
	if err != nil {
		return nil, err
	}
	hash, size, err := hashObjects(objs)
	if err != nil {
		return nil, err
	}
	if max := cmp.Or(r.MaxBytes, DefaultMaxBytes); size > max {
		return nil, &BudgetError{Cluster: c.Name, What: "bytes", Limit: fmt.Sprintf("%d (it has %d)", max, size)}
	}
	return &Result{Cluster: c.Name, Objects: objs, Hash: hash}, nil
}

// All renders the named clusters of f (every cluster when names is empty)
// concurrently and returns the results in the order of names. Every failure
// is reported, joined, each as "render <cluster>: ..." per line.
func (r *Renderer) All(ctx context.Context, repoDir string, f *fleet.Fleet, names []string) ([]*Result, error) {
	if len(names) == 0 {
		for _, c := range f.Clusters {
			names = append(names, c.Name)
		}
	}
	n := r.Parallelism
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	results := make([]*Result, len(names))
	errs := make([]error, len(names))
	// One cache for every cluster: they share bases.
	cache, cacheErr := newRepoCache(repoDir)
	var g errgroup.Group
	g.SetLimit(n)
	for i, name := range names {
		c := f.ClusterByName(name)
		if c == nil {
			errs[i] = fmt.Errorf("render %s: no such cluster in the fleet", name)
			continue
		}
		g.Go(func() error {
			var res *Result
			err := ctx.Err()
			if err == nil {
				err = cacheErr
			}
			if err == nil {
				res, err = r.cluster(ctx, cache, c)
			}
			if err != nil {
				errs[i] = prefixLines("render "+name+": ", err)
				return nil
			}
			results[i] = res
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return results, nil
}

// prefixLines prefixes every line of err's message, so that each problem
// stays one line that names its cluster.
func prefixLines(prefix string, err error) error {
	lines := strings.Split(strings.TrimRight(err.Error(), "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return &prefixedError{msg: strings.Join(lines, "\n"), err: err}
}

// prefixedError keeps the wrapped error for errors.Is and errors.As.
type prefixedError struct {
	msg string
	err error
}

func (e *prefixedError) Error() string { return e.msg }
func (e *prefixedError) Unwrap() error { return e.err }

// build runs kustomize on dir and returns the objects it built. kustomize
// panics on some malformed input; a panic becomes an error.
func build(fsys *repoFS, dir string) (objs []*unstructured.Unstructured, err error) {
	defer func() {
		if p := recover(); p != nil {
			objs, err = nil, fmt.Errorf("kustomize build %s failed: %v", fsys.rel(dir), p)
		}
	}()
	m, err := kustomize(fsys, dir)
	if err != nil {
		return nil, err
	}
	objs = make([]*unstructured.Unstructured, 0, m.Size())
	for _, res := range m.Resources() {
		u, err := toUnstructured(res)
		if err != nil {
			return nil, err
		}
		objs = append(objs, u)
	}
	return objs, nil
}

// schemaOnce loads kyaml's built-in OpenAPI schema before the first build.
// kyaml loads it lazily into package globals on first use, without a lock
// around the load, so two builds that need it first at once race; loaded
// here once, every build reads it after.
var schemaOnce sync.Once

// kustomize runs krusty on dir.
func kustomize(fsys *repoFS, dir string) (resmap.ResMap, error) {
	schemaOnce.Do(func() { openapi.SchemaForResourceType(kyaml.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}) })
	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.Reorder = krusty.ReorderOptionNone
	opts.AddManagedbyLabel = false
	opts.ParseCache = fsys.parsed
	m, err := krusty.MakeKustomizer(opts).Run(fsys, dir)
	if err != nil {
		return nil, explain(fsys, dir, err)
	}
	return m, nil
}

// goObjectDump matches the Go struct dump kustomize appends to "missing
// kind" and "missing metadata.name" errors.
var goObjectDump = regexp.MustCompile(` in object \{\{.*?\]\}\}`)

// registeredID finds the ID in kustomize's duplicate-resource error.
var registeredID = regexp.MustCompile(`already registered id: ([^\s']+)`)

// explain makes a kustomize error actionable. What the file system refused
// (a path outside the repository, a remote base, a large file) is reported
// as such, since kustomize often hides it behind a fallback attempt; a
// duplicate object is named by ID together with the files that define it.
func explain(fsys *repoFS, dir string, err error) error {
	if refused := fsys.refusals(); len(refused) > 0 && !mentionsAny(err.Error(), refused) {
		return errors.Join(refused...)
	}
	m := registeredID.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("kustomize build %s: %s", fsys.rel(dir), cleanKustomizeError(fsys, err.Error()))
	}
	rid := resid.FromString(m[1])
	id := convoyID(rid)
	sources := definingFiles(fsys, rid.Kind, rid.Name)
	if len(sources) >= 2 {
		return fmt.Errorf("duplicate object %s: defined in %s", id, strings.Join(sources, " and "))
	}
	return fmt.Errorf("duplicate object %s: %s", id, cleanKustomizeError(fsys, err.Error()))
}

// convoyID writes a kustomize ID as convoy names objects in errors:
// apiVersion/kind/namespace/name.
func convoyID(rid resid.ResId) string {
	return rid.Gvk.ApiVersion() + "/" + rid.Kind + "/" + rid.Namespace + "/" + rid.Name
}

// mentionsAny reports whether msg contains the message of one of errs.
func mentionsAny(msg string, errs []error) bool {
	for _, e := range errs {
		if strings.Contains(msg, e.Error()) {
			return true
		}
	}
	return false
}

// definingFiles returns the files read during the build that hold a
// document of the given kind and name.
func definingFiles(fsys *repoFS, kind, name string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range fsys.filesRead() {
		if seen[f] || isKustomizationFile(f) {
			continue
		}
		seen[f] = true
		b, err := fsys.readFile(filepath.Join(fsys.root, filepath.FromSlash(f)))
		if err != nil {
			continue
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			var meta struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if yaml.Unmarshal([]byte(doc), &meta) == nil && meta.Kind == kind && meta.Metadata.Name == name {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// cleanKustomizeError shortens kustomize's nested error text: when a
// resource failed to load as a file and then as a directory, only the file
// error is kept; absolute paths inside the repository become
// repository-relative; the text becomes one line.
func cleanKustomizeError(fsys *repoFS, msg string) string {
	const fileErr, dirErr = "accumulation err='", "': must build at directory: "
	if i, j := strings.Index(msg, fileErr), strings.LastIndex(msg, dirErr); i >= 0 && j > i {
		msg = msg[:i] + msg[i+len(fileErr):j]
	}
	msg = strings.ReplaceAll(msg, fsys.root+string(filepath.Separator), "")
	msg = goObjectDump.ReplaceAllString(msg, "")
	return strings.Join(strings.Fields(msg), " ")
}

// finish substitutes the cluster variables, checks that every object has a
// kind, an apiVersion and a name, that no ID appears twice, and sorts.
// locate names the files that define an object, for error messages.
func finish(objs []*unstructured.Unstructured, vars map[string]string, locate func(kind, name string) []string) ([]*unstructured.Unstructured, error) {
	var errs []error
	byID := map[string]string{} // ID after substitution → ID before
	out := objs[:0]
	for i, u := range objs {
		before := ObjectID(u)
		// Most objects have no variable: they skip the walk in field
		// order that error messages need.
		if hasVariable(u.Object) {
			if se := substituteObject(before, u.Object, vars); len(se) > 0 {
				errs = append(errs, se...)
				continue
			}
		}
		var missing []string
		if u.GetAPIVersion() == "" {
			missing = append(missing, "apiVersion")
		}
		if u.GetKind() == "" {
			missing = append(missing, "kind")
		}
		if u.GetName() == "" {
			missing = append(missing, "metadata.name")
		}
		if len(missing) > 0 {
			where := fmt.Sprintf("object %d", i+1)
			if files := locate(u.GetKind(), u.GetName()); len(files) > 0 {
				where = strings.Join(files, ", ")
			}
			errs = append(errs, fmt.Errorf("%s: %s: missing %s", where, before, strings.Join(missing, ", ")))
			continue
		}
		id := ObjectID(u)
		if prev, dup := byID[id]; dup {
			errs = append(errs, fmt.Errorf("duplicate object %s: rendered from %s and %s", id, prev, before))
			continue
		}
		byID[id] = before
		out = append(out, u)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sortObjects(out)
	return out, nil
}

// ClusterAt renders the cluster named name as the repository checked out in
// repoDir defines it (its own fleet.yaml), for a rollback to an earlier
// revision.
func (r *Renderer) ClusterAt(ctx context.Context, repoDir, name string) (*Result, error) {
	f, err := fleet.Load(repoDir)
	if err != nil {
		return nil, err
	}
	c := f.ClusterByName(name)
	if c == nil {
		return nil, fmt.Errorf("cluster %s is not in that revision's %s", name, fleet.FileName)
	}
	return r.Cluster(ctx, repoDir, f, c)
}
