package policy

import (
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

// quotaIndexRef is the Rego function of the built-in quota policy that the
// engine evaluates with quotaIndex instead. In Rego (as under `opa test`) it
// is data.convoy.quota.index_objects.
const quotaIndexRef = "data.convoy.quota.fast_index"

// quotaIndexBuiltin is the name of quotaIndex in Rego.
const quotaIndexBuiltin = "convoy.quota_index"

// quotaIndexFunction registers quotaIndex with a Rego query.
var quotaIndexFunction = rego.Function1(&rego.Function{
	Name: quotaIndexBuiltin,
	Decl: types.NewFunction(types.Args(types.A), types.A),
}, func(bctx rego.BuiltinContext, objects *ast.Term) (*ast.Term, error) {
	var v ast.Value
	if x, ok := bctx.Context.Value(objectIndexKey{}).(*objectIndex); ok && objects.Value == ast.Value(x.objects) {
		v = x.value() // the very list Evaluate read while converting it
	} else {
		v = quotaIndex(objects.Value)
	}
	if v == nil {
		return nil, nil // undefined: the policy falls back to its Rego index
	}
	return ast.NewTerm(v), nil
})

// Keys of the objects quotaIndex reads and writes.
var (
	keyAPIVersion     = ast.StringTerm("apiVersion")
	keyCompletions    = ast.StringTerm("completions")
	keyContainers     = ast.StringTerm("containers")
	keyInitContainers = ast.StringTerm("initContainers")
	keyKind           = ast.StringTerm("kind")
	keyLimits         = ast.StringTerm("limits")
	keyOverhead       = ast.StringTerm("overhead")
	keyParallelism    = ast.StringTerm("parallelism")
	keyPods           = ast.StringTerm("pods")
	keyReplicas       = ast.StringTerm("replicas")
	keyRequests       = ast.StringTerm("requests")
	keyResourceQuotas = ast.StringTerm("resource_quotas")
	keyNegative       = ast.StringTerm("negative")
	keyResources      = ast.StringTerm("resources")
	keyRestartPolicy  = ast.StringTerm("restartPolicy")
	keySpec           = ast.StringTerm("spec")
	keyTemplate       = ast.StringTerm("template")
	valueAlways       = ast.StringTerm("Always")
)

// quotaIndex is data.convoy.quota.index_objects (policies/quota.rego) in Go:
// it walks the objects once and groups those that run pods by the shape of
// their pods, so that the policy works per distinct shape instead of per
// container. Its result equals the Rego function's up to that grouping:
// the same shapes, the same [object index, pods] members in object order.
//
// It gives up, returning nil, on any object it is not sure to read exactly
// as the Rego function does (a field of an unexpected type, a non-integer
// pod count), so that the Rego function, errors included, decides those.
func quotaIndex(v ast.Value) ast.Value {
	objects, ok := v.(*ast.Array)
	if !ok {
		return nil
	}
	var r entryReader
	var g indexGrouper
	for i := range objects.Len() {
		e := r.read(objects.Elem(i).Value)
		if !g.add(i, &e) {
			return nil
		}
		r.arena = r.arena[:0] // the grouper keeps copies of the shapes it keeps
	}
	return g.value()
}

// objectIndex is what quotaIndex reads of each object of a list, read once
// while the list is built (convertObjects), so that quotaIndex of that list
// only groups: value() equals quotaIndex of the list.
type objectIndex struct {
	objects *ast.Array   // the list, which must not change after it was read
	entries []indexEntry // one per object, in order

	once  sync.Once
	index ast.Value // nil when quotaIndex gives up
}

// value is quotaIndex(x.objects).
func (x *objectIndex) value() ast.Value {
	x.once.Do(func() {
		var g indexGrouper
		for i := range x.entries {
			if !g.add(i, &x.entries[i]) {
				return
			}
		}
		x.index = g.value()
	})
	return x.index
}

// objectIndexKey is the context key of the *objectIndex of an evaluation's
// input objects.
type objectIndexKey struct{}

// entryClass says what an object is to the quota index.
type entryClass uint8

const (
	entryOther    entryClass = iota // runs no pods
	entryQuota                      // a v1 ResourceQuota
	entryWorkload                   // runs pods: key, hash and pods are set
	entryUnusual                    // not read as the Rego function would: give up
)

// indexEntry is what the quota index reads of one object.
type indexEntry struct {
	class entryClass
	key   shapeKey
	hash  int // key.hash()
	pods  int
}

// entryReader reads index entries; the containers of their shapes are cut
// from its arena.
type entryReader struct {
	arena []containerKey
}

// read reads the index entry of obj.
func (r *entryReader) read(v ast.Value) indexEntry {
	obj, ok := v.(ast.Object)
	if !ok {
		return indexEntry{class: entryUnusual}
	}
	apiVersion, ok1 := stringField(obj, keyAPIVersion)
	kind, ok2 := stringField(obj, keyKind)
	if !ok1 || !ok2 {
		return indexEntry{class: entryUnusual}
	}
	if apiVersion == "v1" && kind == "ResourceQuota" {
		return indexEntry{class: entryQuota}
	}
	spec, pods, isWorkload, ok := workload(obj, apiVersion, kind)
	if !ok {
		return indexEntry{class: entryUnusual}
	}
	if !isWorkload {
		return indexEntry{class: entryOther}
	}
	e := indexEntry{class: entryWorkload, pods: pods}
	if !r.readShape(spec, &e.key) {
		return indexEntry{class: entryUnusual}
	}
	e.hash = e.key.hash()
	return e
}

// indexGrouper builds the quota index from the entries of the objects, in
// object order.
type indexGrouper struct {
	groups   []*shapeGroup
	byHash   map[int][]*shapeGroup
	quotas   []*ast.Term
	negative []*ast.Term // objects with a negative pod count
}

// add adds the entry of object i; false when the index must give up.
func (g *indexGrouper) add(i int, e *indexEntry) bool {
	switch e.class {
	case entryOther:
		return true
	case entryQuota:
		g.quotas = append(g.quotas, ast.InternedTerm(i))
		return true
	case entryUnusual:
		return false
	}
	if e.pods < 0 {
		g.negative = append(g.negative, ast.InternedTerm(i))
	}
	member := ast.ArrayTerm(ast.InternedTerm(i), ast.InternedTerm(e.pods))
	var group *shapeGroup
	for _, gr := range g.byHash[e.hash] {
		if gr.key.equal(&e.key) {
			group = gr
			break
		}
	}
	if group == nil {
		if g.byHash == nil {
			g.byHash = map[int][]*shapeGroup{}
		}
		group = &shapeGroup{key: e.key.clone()}
		g.byHash[e.hash] = append(g.byHash[e.hash], group)
		g.groups = append(g.groups, group)
	}
	group.members = append(group.members, member)
	var ok bool
	group.pods, ok = addInt(group.pods, e.pods)
	return ok
}

func (g *indexGrouper) value() ast.Value {
	pods := make([]*ast.Term, len(g.groups))
	for n, gr := range g.groups {
		pods[n] = ast.ArrayTerm(gr.key.shape(), ast.ArrayTerm(gr.members...), ast.InternedTerm(gr.pods))
	}
	return ast.NewObject(
		[2]*ast.Term{keyPods, ast.ArrayTerm(pods...)},
		[2]*ast.Term{keyResourceQuotas, ast.ArrayTerm(g.quotas...)},
		[2]*ast.Term{keyNegative, ast.ArrayTerm(g.negative...)},
	)
}

// shapeGroup is the objects whose pods have one shape.
type shapeGroup struct {
	key     shapeKey
	members []*ast.Term // [object index, pods]
	pods    int         // sum of the members' pods
}

// addInt adds without overflow; ok is false when it would overflow.
func addInt(a, b int) (sum int, ok bool) {
	sum = a + b
	if (b > 0 && sum < a) || (b < 0 && sum > a) {
		return 0, false
	}
	return sum, true
}

// containerKey is what container_shape(c) keeps of a container.
type containerKey struct {
	limits, requests *ast.Term // objects
	sidecar          bool
}

// shapeKey is what pod_shape(spec) keeps of a pod spec, without building it.
type shapeKey struct {
	containers, inits []containerKey
	overhead          *ast.Term // an object
}

// readShape sets k to the shape of spec, its containers cut from the
// arena; false when a container is not an object.
func (r *entryReader) readShape(spec ast.Object, k *shapeKey) bool {
	start := len(r.arena)
	var ok1, ok2 bool
	r.arena, ok1 = readContainers(spec, keyContainers, r.arena)
	mid := len(r.arena)
	r.arena, ok2 = readContainers(spec, keyInitContainers, r.arena)
	k.containers, k.inits = r.arena[start:mid:mid], r.arena[mid:len(r.arena):len(r.arena)]
	k.overhead = emptyObjectTerm
	if t := spec.Get(keyOverhead); t != nil {
		if _, ok := t.Value.(ast.Object); ok {
			k.overhead = t
		}
	}
	return ok1 && ok2
}

// readContainers is list(object.get(spec, key, [])) with each container's
// shape, appended to out.
func readContainers(spec ast.Object, key *ast.Term, out []containerKey) ([]containerKey, bool) {
	t := spec.Get(key)
	if t == nil {
		return out, true
	}
	arr, ok := t.Value.(*ast.Array)
	if !ok {
		return out, true
	}
	for i := range arr.Len() {
		c, ok := arr.Elem(i).Value.(ast.Object)
		if !ok {
			return out, false
		}
		ck := containerKey{limits: emptyObjectTerm, requests: emptyObjectTerm}
		if r := c.Get(keyResources); r != nil {
			if r, ok := r.Value.(ast.Object); ok {
				ck.limits, ck.requests = resourceMap(r, keyLimits), resourceMap(r, keyRequests)
			}
		}
		if rp := c.Get(keyRestartPolicy); rp != nil {
			ck.sidecar = rp.Value.Compare(valueAlways.Value) == 0
		}
		out = append(out, ck)
	}
	return out, true
}

// resourceMap is resource_map(c, key) given c.resources.
func resourceMap(resources ast.Object, key *ast.Term) *ast.Term {
	if m := resources.Get(key); m != nil {
		if _, ok := m.Value.(ast.Object); ok {
			return m
		}
	}
	return emptyObjectTerm
}

// emptyObjectTerm is the {} of a missing resource map or overhead. It is
// only read, never changed.
var emptyObjectTerm = ast.ObjectTerm()

func (k *shapeKey) hash() int {
	h := k.overhead.Hash()
	for _, cs := range [][]containerKey{k.containers, k.inits} {
		h = h*31 + len(cs)
		for _, c := range cs {
			h = h*31 + c.limits.Hash()
			h = h*31 + c.requests.Hash()
			if c.sidecar {
				h++
			}
		}
	}
	return h
}

func (k *shapeKey) equal(o *shapeKey) bool {
	eq := func(a, b []containerKey) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i].sidecar != b[i].sidecar || !a[i].limits.Equal(b[i].limits) || !a[i].requests.Equal(b[i].requests) {
				return false
			}
		}
		return true
	}
	return eq(k.containers, o.containers) && eq(k.inits, o.inits) && k.overhead.Equal(o.overhead)
}

func (k *shapeKey) clone() shapeKey {
	return shapeKey{
		containers: append([]containerKey(nil), k.containers...),
		inits:      append([]containerKey(nil), k.inits...),
		overhead:   k.overhead,
	}
}

// shape is pod_shape(spec) of the quota policy.
func (k *shapeKey) shape() *ast.Term {
	list := func(cs []containerKey) *ast.Term {
		out := make([]*ast.Term, len(cs))
		for i, c := range cs {
			fields := [][2]*ast.Term{{keyResources, ast.ObjectTerm(
				[2]*ast.Term{keyLimits, c.limits},
				[2]*ast.Term{keyRequests, c.requests},
			)}}
			if c.sidecar {
				fields = append(fields, [2]*ast.Term{keyRestartPolicy, valueAlways})
			}
			out[i] = ast.ObjectTerm(fields...)
		}
		return ast.ArrayTerm(out...)
	}
	return ast.ObjectTerm(
		[2]*ast.Term{keyContainers, list(k.containers)},
		[2]*ast.Term{keyInitContainers, list(k.inits)},
		[2]*ast.Term{keyOverhead, k.overhead},
	)
}

// stringField reads an optional string field: ok is false when the field is
// there but not a string. A missing field reads as "", which matches no kind.
func stringField(obj ast.Object, key *ast.Term) (s string, ok bool) {
	t := obj.Get(key)
	if t == nil {
		return "", true
	}
	str, ok := t.Value.(ast.String)
	return string(str), ok
}

// objectField reads an optional object field: ok is false when the field is there
// but not an object.
func objectField(obj ast.Object, key *ast.Term) (o ast.Object, present, ok bool) {
	t := obj.Get(key)
	if t == nil {
		return nil, false, true
	}
	o, ok = t.Value.(ast.Object)
	return o, true, ok
}

// countOr is count_or(object.get(spec, key, null), def): an integer field,
// def when the field is missing or not a number. ok is false for a number
// that is not an integer.
func countOr(spec ast.Object, key *ast.Term, def int) (n int, ok bool) {
	t := spec.Get(key)
	if t == nil {
		return def, true
	}
	num, isNum := t.Value.(ast.Number)
	if !isNum {
		return def, true
	}
	n, ok = num.Int()
	return n, ok
}

// workload is workload(obj) of the quota policy: the pod spec and number of
// pods of an object that runs pods. isWorkload is false for other objects;
// ok is false when the object is not of the expected shape.
func workload(obj ast.Object, apiVersion, kind string) (spec ast.Object, pods int, isWorkload, ok bool) {
	var specOf func(ast.Object) (ast.Object, bool)
	template := func(s ast.Object) (ast.Object, bool) {
		t, present, ok := objectField(s, keyTemplate)
		if !present || !ok {
			return nil, false
		}
		ps, present, ok := objectField(t, keySpec)
		return ps, present && ok
	}
	switch {
	case strings.HasPrefix(apiVersion, "apps/") && (kind == "Deployment" || kind == "StatefulSet" || kind == "ReplicaSet" || kind == "DaemonSet"),
		strings.HasPrefix(apiVersion, "batch/") && kind == "Job":
		specOf = template
	case apiVersion == "v1" && kind == "Pod":
		specOf = func(s ast.Object) (ast.Object, bool) { return s, true }
	default:
		return nil, 0, false, true
	}
	s, present, ok := objectField(obj, keySpec)
	if !present || !ok {
		return nil, 0, false, false
	}
	if spec, ok = specOf(s); !ok {
		return nil, 0, false, false
	}
	switch kind {
	case "Deployment", "StatefulSet", "ReplicaSet":
		pods, ok = countOr(s, keyReplicas, 1)
	case "Job":
		var parallelism, completions int
		if parallelism, ok = countOr(s, keyParallelism, 1); ok {
			completions, ok = countOr(s, keyCompletions, parallelism)
			pods = min(parallelism, completions)
		}
	default:
		pods, ok = 1, true
	}
	return spec, pods, true, ok
}
