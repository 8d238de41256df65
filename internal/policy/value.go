package policy

import (
	"encoding/json"
	"hash/maphash"
	"runtime"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// converter turns rendered objects into Rego values equal to what
// ast.InterfaceToValue gives, with far fewer allocations, which were most of
// the cost of evaluating a large render:
//
//   - one term per distinct string and per distinct number, shared by every
//     object it appears in (renders repeat keys, kinds, labels, quantities);
//   - one term per distinct small object or list (see shareKey): renders
//     repeat resources, selectors, ports and whole pod templates;
//   - the terms of objects and lists and the elements of lists cut from
//     blocks instead of allocated one by one, and one reused stack of the
//     key-value pairs ast.NewObject copies.
//
// Sharing also makes the quota index's comparisons of shapes mostly pointer
// comparisons. The values it returns share terms, so that they, like every
// value handed to OPA (which copies the input before a `with` changes it),
// must never be modified. A converter is not safe for concurrent use;
// convertObjects gives each goroutine its own.
type converter struct {
	strings map[string]*ast.Term
	scalars map[any]*ast.Term // numbers of the JSON types
	objects shareTable
	arrays  shareTable
	pairs   [][2]*ast.Term // key-value pairs of the objects being built, innermost last
	terms   []ast.Term     // block the terms of maps and lists are taken from
	elems   []*ast.Term    // block the elements of lists are taken from
	index   *entryReader   // nil unless the quota index is read while converting
}

// Sizes of the blocks a converter cuts terms and list elements from.
const (
	termBlock = 512
	elemBlock = 1024
)

// newConverter is a converter for about n objects.
func newConverter(n int) *converter {
	c := &converter{
		strings: make(map[string]*ast.Term, 256),
		scalars: map[any]*ast.Term{},
		objects: newShareTable(2 * n),
		arrays:  newShareTable(n / 2),
	}
	for _, t := range wellKnownKeys {
		c.strings[string(t.Value.(ast.String))] = t
	}
	return c
}

// wellKnownKeys are the keys the quota index looks up: objects built with
// these very terms let ast.Object.Get match them by pointer.
var wellKnownKeys = []*ast.Term{
	keyAPIVersion, keyCompletions, keyContainers, keyInitContainers, keyKind, keyLimits, keyOverhead,
	keyParallelism, keyReplicas, keyRequests, keyResources, keyRestartPolicy, keySpec, keyTemplate, valueAlways,
}

// term converts x as ast.InterfaceToValue does.
func (c *converter) term(x any) (*ast.Term, error) {
	switch x := x.(type) {
	case string:
		return c.str(x), nil
	case map[string]any:
		start := len(c.pairs)
		for k, v := range x {
			t, err := c.term(v)
			if err != nil {
				c.dropPairs(start)
				return nil, err
			}
			c.pairs = append(c.pairs, [2]*ast.Term{c.str(k), t})
		}
		return c.object(start), nil
	case []any:
		if len(x) > 2*maxShared {
			elems := c.elemSlice(len(x))
			for i, e := range x {
				t, err := c.term(e)
				if err != nil {
					return nil, err
				}
				elems[i] = t
			}
			return c.composite(ast.NewArray(elems...)), nil // keeps elems
		}
		var elems [2 * maxShared]*ast.Term
		for i, e := range x {
			t, err := c.term(e)
			if err != nil {
				return nil, err
			}
			elems[i] = t
		}
		return c.array(elems[:len(x)]), nil
	case nil:
		return ast.InternedNullTerm, nil
	case bool:
		return ast.InternedTerm(x), nil
	case int64, int, float64, json.Number:
		if t, ok := c.scalars[x]; ok {
			return t, nil
		}
		v, err := ast.InterfaceToValue(x)
		if err != nil {
			return nil, err
		}
		t := ast.NewTerm(v)
		c.scalars[x] = t
		return t, nil
	default:
		v, err := ast.InterfaceToValue(x)
		if err != nil {
			return nil, err
		}
		return ast.NewTerm(v), nil
	}
}

// maxShared is the number of fields of the largest object, and half the
// length of the largest list, that a converter shares.
const maxShared = 4

// shareKey identifies a small object or list by the terms of its fields
// (key, value, ordered by key) or elements. The terms of equal strings,
// numbers and booleans are one term, so equal keys mean equal values, and
// the converter shares them: a render repeats the same resources, labels,
// ports and whole pod templates many times. Different keys may still be
// equal values (an int64 and a json.Number of the same number), which are
// then not shared.
type shareKey struct {
	n     int
	terms [2 * maxShared]*ast.Term
}

// shareTable holds one term per distinct shareKey of objects or of lists.
type shareTable struct {
	seed  maphash.Seed
	index map[uint64]int32 // hash of a key → its position in keys and terms
	keys  []shareKey
	terms []*ast.Term
}

func newShareTable(size int) shareTable {
	return shareTable{
		seed:  maphash.MakeSeed(),
		index: make(map[uint64]int32, size),
		keys:  make([]shareKey, 0, size),
		terms: make([]*ast.Term, 0, size),
	}
}

// get is the term of the value with key k, made by value the first time.
// Of two keys with one hash, which is rare, only the first is shared.
func (t *shareTable) get(k *shareKey, value func() ast.Value, c *converter) *ast.Term {
	h := maphash.Comparable(t.seed, *k)
	i, ok := t.index[h]
	if ok && t.keys[i] == *k {
		return t.terms[i]
	}
	term := c.composite(value())
	if !ok {
		t.index[h] = int32(len(t.keys))
		t.keys = append(t.keys, *k)
		t.terms = append(t.terms, term)
	}
	return term
}

// object is the object of the key-value pairs from start on, which it
// takes off the stack; the keys are distinct.
func (c *converter) object(start int) *ast.Term {
	pairs := c.pairs[start:]
	defer c.dropPairs(start)
	if len(pairs) > maxShared {
		return c.composite(ast.NewObject(pairs...)) // copies the pairs
	}
	sortPairs(pairs)
	key := shareKey{n: len(pairs)}
	for i, p := range pairs {
		key.terms[2*i], key.terms[2*i+1] = p[0], p[1]
	}
	return c.objects.get(&key, func() ast.Value { return ast.NewObject(pairs...) }, c)
}

// dropPairs takes the pairs from start on off the stack.
func (c *converter) dropPairs(start int) {
	clear(c.pairs[start:])
	c.pairs = c.pairs[:start]
}

// array is the list of elems, which it does not keep.
func (c *converter) array(elems []*ast.Term) *ast.Term {
	newArray := func() ast.Value {
		s := c.elemSlice(len(elems))
		copy(s, elems)
		return ast.NewArray(s...) // keeps s
	}
	if len(elems) > 2*maxShared {
		return c.composite(newArray())
	}
	key := shareKey{n: len(elems)}
	copy(key.terms[:], elems)
	return c.arrays.get(&key, newArray, c)
}

// sortPairs sorts a few key-value pairs by key, which are distinct strings.
func sortPairs(pairs [][2]*ast.Term) {
	for i := 1; i < len(pairs); i++ {
		for j := i; j > 0 && pairs[j][0].Value.(ast.String) < pairs[j-1][0].Value.(ast.String); j-- {
			pairs[j], pairs[j-1] = pairs[j-1], pairs[j]
		}
	}
}

// str is the term of string s, one per distinct string.
func (c *converter) str(s string) *ast.Term {
	t, ok := c.strings[s]
	if !ok {
		t = ast.InternedTerm(s)
		c.strings[s] = t
	}
	return t
}

// strBytes is str(string(b)), without a copy of b when the string is known.
func (c *converter) strBytes(b []byte) *ast.Term {
	if t, ok := c.strings[string(b)]; ok {
		return t
	}
	return c.str(string(b))
}

// composite is a new term holding v, taken from the converter's block.
func (c *converter) composite(v ast.Value) *ast.Term {
	if len(c.terms) == 0 {
		c.terms = make([]ast.Term, termBlock)
	}
	t := &c.terms[0]
	c.terms = c.terms[1:]
	t.Value = v
	return t
}

// elemSlice is room for n list elements, taken from the converter's block.
// Its capacity is n, so that appending to it never writes into the block.
func (c *converter) elemSlice(n int) []*ast.Term {
	if n > elemBlock/4 {
		return make([]*ast.Term, n)
	}
	if len(c.elems) < n {
		c.elems = make([]*ast.Term, elemBlock)
	}
	s := c.elems[:n:n]
	c.elems = c.elems[n:]
	return s
}

// minObjectsPerWorker keeps renders too small to gain from it from being
// converted by several goroutines.
const minObjectsPerWorker = 256

// convertObjects converts the rendered objects to the terms of a Rego array,
// on up to GOMAXPROCS goroutines. With index set it also reads, while each
// object is fresh in the cache, what the quota index needs of it
// (quota_index.go), and returns that index.
func convertObjects[T any](objects []T, index bool) ([]*ast.Term, *objectIndex, error) {
	terms := make([]*ast.Term, len(objects))
	workers := min(runtime.GOMAXPROCS(0), len(objects)/minObjectsPerWorker)
	if workers < 1 {
		workers = 1
	}
	type chunk struct {
		lo, hi  int
		entries []indexEntry
		err     error
	}
	chunks := make([]chunk, workers)
	convert := func(ch *chunk) {
		c := newConverter(ch.hi - ch.lo)
		if index {
			c.index = &entryReader{}
			ch.entries = make([]indexEntry, 0, ch.hi-ch.lo)
		}
		for i := ch.lo; i < ch.hi; i++ {
			t, err := c.term(objects[i])
			if err != nil {
				ch.err = err
				return
			}
			terms[i] = t
			if index {
				ch.entries = append(ch.entries, c.index.read(t.Value))
			}
		}
	}
	for w := range chunks {
		chunks[w].lo, chunks[w].hi = w*len(objects)/workers, (w+1)*len(objects)/workers
	}
	parallel(workers, func(w int) { convert(&chunks[w]) })
	var entries []indexEntry
	if index {
		entries = make([]indexEntry, 0, len(objects))
	}
	for _, ch := range chunks {
		if ch.err != nil { // the first object's error in object order
			return nil, nil, ch.err
		}
		entries = append(entries, ch.entries...)
	}
	if !index {
		return terms, nil, nil
	}
	return terms, &objectIndex{entries: entries}, nil
}

// parallel runs fn(0) … fn(workers-1), each on its own goroutine when there
// are several, and returns when all have. A panic of one is the caller's.
func parallel(workers int, fn func(w int)) {
	if workers == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	var once sync.Once
	var panicked any
	for w := range workers {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					once.Do(func() { panicked = p })
				}
			}()
			fn(w)
		})
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
}

// convertDocument converts an input document decoded from JSON (ParseInput)
// as ast.InterfaceToValue does, its objects as convertObjects does.
func convertDocument(doc map[string]any) (ast.Value, error) {
	list, isList := doc["objects"].([]any)
	var objects []*ast.Term
	if isList {
		var err error
		if objects, _, err = convertObjects(list, false); err != nil {
			return nil, err
		}
	}
	c := newConverter(0)
	pairs := make([][2]*ast.Term, 0, len(doc))
	for k, v := range doc {
		var t *ast.Term
		if k == "objects" && isList {
			t = ast.NewTerm(ast.NewArray(objects...))
		} else {
			var err error
			if t, err = c.term(v); err != nil {
				return nil, err
			}
		}
		pairs = append(pairs, [2]*ast.Term{c.str(k), t})
	}
	return ast.NewObject(pairs...), nil
}
