package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Options tune one cluster apply.
type Options struct {
	// HealthTimeout bounds the wait for applied objects to become healthy.
	HealthTimeout time.Duration
	// WaitInterval is how often health is polled; 1s when zero.
	WaitInterval time.Duration
	// AllowEmpty lets an empty render prune every object convoy applied.
	AllowEmpty bool
}

// Applier applies rendered objects to one cluster.
type Applier struct {
	Fleet   string
	Cluster string
	client  client.Client
	rm      *ssa.ResourceManager
}

// New returns an Applier for the cluster reached by cfg.
func New(cfg *rest.Config, fleetName, clusterName string) (*Applier, error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", clusterName, err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", clusterName, err)
	}
	c, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", clusterName, err)
	}
	poller := polling.NewStatusPoller(c, mapper, polling.Options{})
	rm := ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager, Group: "convoy.dev"})
	rm.SetConcurrency(8)
	return &Applier{Fleet: fleetName, Cluster: clusterName, client: c, rm: rm}, nil
}

// Client is the cluster's client.
func (a *Applier) Client() client.Client { return a.client }

// Result is what one apply did.
type Result struct {
	Applied   []ObjectChange
	Pruned    []string // IDs deleted
	Kept      []string // IDs no longer rendered but not deleted: foreign, prune disabled, or delete failed
	Inventory []string // IDs the cluster's record must hold after this apply
	// Fingerprints of convoy's ownership of each applied object, taken
	// right after the apply, for the record (see Drift). Best effort: an
	// object without one is re-applied by the next drift check.
	Fingerprints map[string]string
	// Hashes of every rendered object (ObjectHash), for the record.
	Hashes map[string]string
}

// ObjectChange is one object's outcome: created, configured or unchanged.
type ObjectChange struct {
	ID     string
	Action string
}

// prepare returns deep copies of objs carrying the owner labels.
func (a *Applier) prepare(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		c := o.DeepCopy()
		labels := c.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelFleet] = a.Fleet
		labels[LabelCluster] = a.Cluster
		c.SetLabels(labels)
		out[i] = c
	}
	return out
}

// Apply applies objs (ApplyAllStaged), waits until they are healthy, then
// prunes what prev's inventory held that objs no longer do. prev may be nil
// (first apply). On a health failure the objects stay applied and the
// error names every unhealthy object; nothing is pruned.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured, prev *Record, opts Options) (*Result, error) {
	var prevInv []string
	if prev != nil {
		prevInv = prev.Inventory
	}
	if len(objs) == 0 && len(prevInv) > 0 && !opts.AllowEmpty {
		return nil, fmt.Errorf("cluster %s: the render is empty and would prune all %d objects; refusing without --allow-empty", a.Cluster, len(prevInv))
	}
	objs = a.prepare(objs)
	masker := newSecretMasker(objs)
	hashes := make(map[string]string, len(objs))
	for _, o := range objs {
		hashes[RefOf(o).String()] = ObjectHash(o)
	}
	toApply, same := a.splitUnchanged(ctx, objs, hashes, prev)
	applyOpts := ssa.DefaultApplyOptions()
	applyOpts.ForceSelector = map[string]string{AnnotationForce: "enabled"}
	applyOpts.WaitInterval = interval(opts)
	applyOpts.WaitTimeout = healthTimeout(opts)
	cs, err := a.applyStaged(ctx, toApply, applyOpts)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: apply: %w", a.Cluster, masker.wrap(err))
	}
	// The health wait covers what was sent; the objects not sent were
	// healthy when the record was written, and polling them would cost a
	// LIST per kind and namespace every interval.
	sent := cs.ToObjMetadataSet()
	for _, o := range same { // in the result, as ssa's unchanged
		cs.Add(ssa.ChangeSetEntry{ObjMetadata: object.UnstructuredToObjMetadata(o), GroupVersion: o.GroupVersionKind().Version,
			Subject: ssautils.FmtUnstructured(o), Action: ssa.UnchangedAction})
	}
	res := &Result{Hashes: hashes}
	for _, e := range cs.Entries {
		res.Applied = append(res.Applied, ObjectChange{ID: idOfEntry(e), Action: e.Action.String()})
	}
	// Before the health wait, to leave other writers the smallest window to
	// slip a change into the baseline. An error only costs a re-apply later.
	// Objects not sent keep the fingerprint the drift check just confirmed.
	res.Fingerprints, _ = a.fingerprints(ctx, refsOf(toApply))
	if res.Fingerprints != nil {
		for _, o := range same {
			id := RefOf(o).String()
			res.Fingerprints[id] = prev.Fingerprints[id]
		}
	}
	waitOpts := ssa.WaitOptions{Interval: interval(opts), Timeout: healthTimeout(opts)}
	if err := a.rm.WaitForSetWithContext(ctx, sent, waitOpts); err != nil {
		return res, &UnhealthyError{Cluster: a.Cluster, Err: masker.wrap(err)}
	}
	res.Inventory, res.Pruned, res.Kept, err = a.prune(ctx, objs, prevInv)
	return res, err
}

// ObjectHash is a short hash of an object's content as convoy applies it:
// equal hashes mean the same desired state.
func ObjectHash(o *unstructured.Unstructured) string {
	b, err := json.Marshal(o.Object) // map keys sorted: canonical
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// splitUnchanged sorts prepared objects into those to apply and those
// whose rendered content is the one prev recorded (same hash) and whose
// live state still holds convoy's ownership (Drift: one LIST per kind):
// sending those again would only cost a GET, a dry-run and an apply each.
// Without a usable record, or when the drift check fails, everything is
// applied.
func (a *Applier) splitUnchanged(ctx context.Context, objs []*unstructured.Unstructured, hashes map[string]string, prev *Record) (apply, same []*unstructured.Unstructured) {
	if prev == nil || len(prev.Hashes) == 0 || prev.Status != StatusApplied {
		return objs, nil
	}
	drifted, err := a.Drift(ctx, prev)
	if err != nil {
		return objs, nil
	}
	moved := make(map[string]bool, len(drifted))
	for _, id := range drifted {
		moved[id] = true
	}
	for _, o := range objs {
		id := RefOf(o).String()
		if h := prev.Hashes[id]; h != "" && h == hashes[id] && prev.Fingerprints[id] != "" && !moved[id] {
			same = append(same, o)
		} else {
			apply = append(apply, o)
		}
	}
	return apply, same
}

// Changed returns the objects of objs a rollout will send to the cluster
// whose record is rec: those whose content differs from what rec says was
// applied (all of them without a record). A rollout dry-runs these before
// any write; the others were accepted as they are by the last apply.
func (a *Applier) Changed(objs []*unstructured.Unstructured, rec *Record) []*unstructured.Unstructured {
	if rec == nil || len(rec.Hashes) == 0 || rec.Status != StatusApplied {
		return objs
	}
	var out []*unstructured.Unstructured
	for i, o := range a.prepare(objs) {
		if h := rec.Hashes[RefOf(o).String()]; h == "" || h != ObjectHash(o) {
			out = append(out, objs[i])
		}
	}
	return out
}

// applyChunks is how many parts of the last stage are applied at once, and
// minChunk the fewest objects worth a part of their own.
const (
	applyChunks = 8
	minChunk    = 25
)

// applyStaged applies objs as ssa's ApplyAllStaged does — cluster
// definitions (CRDs, namespaces, cluster roles) and classes first, each
// stage waited for — but the last stage, where nearly all objects are, in
// up to applyChunks parts at once: ssa's ApplyAll checks drift concurrently
// but writes one object after the other, which made a cold apply of 1,000
// objects slower than kubectl.
func (a *Applier) applyStaged(ctx context.Context, objs []*unstructured.Unstructured, opts ssa.ApplyOptions) (*ssa.ChangeSet, error) {
	var first, rest []*unstructured.Unstructured
	for _, o := range objs {
		if ssautils.IsClusterDefinition(o) || ssautils.IsClassDefinition(o) {
			first = append(first, o)
		} else {
			rest = append(rest, o)
		}
	}
	cs := ssa.NewChangeSet()
	if len(first) > 0 {
		staged, err := a.rm.ApplyAllStaged(ctx, first, opts)
		if err != nil {
			return nil, err
		}
		cs.Append(staged.Entries)
	}
	n := min(applyChunks, max(1, len(rest)/minChunk))
	parts := make([][]*unstructured.Unstructured, n)
	for i, o := range rest {
		parts[i%n] = append(parts[i%n], o)
	}
	results := make([]*ssa.ChangeSet, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = a.rm.ApplyAll(ctx, part, opts)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, r := range results {
		cs.Append(r.Entries)
	}
	return cs, nil
}

func idOfEntry(e ssa.ChangeSetEntry) string {
	m := e.ObjMetadata
	// ObjMetadata has no version; use the applied object's GroupVersion.
	return strings.TrimPrefix(e.GroupVersion+"/", "/") + m.GroupKind.Kind + "/" + m.Namespace + "/" + m.Name
}

// prune deletes what prevInv holds and objs do not, but only objects that
// carry this fleet's and cluster's owner labels and are not annotated
// convoy.dev/prune: disabled. It returns the new inventory: every rendered
// object plus every stale one whose delete failed, so the next run retries.
func (a *Applier) prune(ctx context.Context, objs []*unstructured.Unstructured, prevInv []string) (inventory, pruned, kept []string, err error) {
	current := make(map[objectKey]bool, len(objs))
	for _, o := range objs {
		ref := RefOf(o)
		current[keyOf(ref)] = true
		inventory = append(inventory, ref.String())
	}
	var stale []*unstructured.Unstructured
	for _, id := range prevInv {
		ref, perr := ParseRef(id)
		if perr != nil {
			continue // not ours to interpret; drop it
		}
		if !current[keyOf(ref)] {
			stale = append(stale, ref.Unstructured())
		}
	}
	if len(stale) > 0 {
		delOpts := ssa.DefaultDeleteOptions()
		delOpts.Inclusions = map[string]string{LabelFleet: a.Fleet, LabelCluster: a.Cluster}
		delOpts.Exclusions = map[string]string{AnnotationPrune: "disabled"}
		cs, derr := a.rm.DeleteAll(ctx, stale, delOpts)
		for _, e := range cs.Entries {
			id := idOfEntry(e)
			switch e.Action {
			case ssa.DeletedAction:
				pruned = append(pruned, id)
			case ssa.SkippedAction:
				kept = append(kept, id)
			default: // the delete failed: keep it in the inventory and retry next time
				kept = append(kept, id)
				inventory = append(inventory, id)
			}
		}
		if derr != nil {
			err = fmt.Errorf("cluster %s: prune: %w", a.Cluster, derr)
		}
	}
	sort.Strings(inventory)
	sort.Strings(pruned)
	sort.Strings(kept)
	return inventory, pruned, kept, err
}

func interval(o Options) time.Duration {
	if o.WaitInterval > 0 {
		return o.WaitInterval
	}
	return time.Second
}

func healthTimeout(o Options) time.Duration {
	if o.HealthTimeout > 0 {
		return o.HealthTimeout
	}
	return 5 * time.Minute
}

// UnhealthyError is returned when applied objects did not become healthy
// within the health timeout. Its message names each unhealthy object.
type UnhealthyError struct {
	Cluster string
	Err     error
}

func (e *UnhealthyError) Error() string {
	return fmt.Sprintf("cluster %s: not healthy: %v", e.Cluster, e.Err)
}

func (e *UnhealthyError) Unwrap() error { return e.Err }

// IsUnhealthy reports whether err is a health failure.
func IsUnhealthy(err error) bool {
	var u *UnhealthyError
	return errors.As(err, &u)
}
