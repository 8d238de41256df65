package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
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
	// FailFast ends the health wait at the first poll that sees an object
	// failed (kstatus Failed: a Deployment past its progress deadline, a
	// failed Job, a Stalled condition), although others are still in
	// progress: a forward rollout's failure should start its rollback
	// without waiting for the timeout. Without it the wait ends early only
	// when every object is healthy or failed. A rollback leaves it off: a
	// Deployment rolled back to a ReplicaSet it still has can report the
	// failed revision's ProgressDeadlineExceeded until its pods progress.
	FailFast bool
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
	poller := newStatusPoller(c, mapper)
	rm := ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager, Group: "convoy.dev"})
	rm.SetConcurrency(8)
	return &Applier{Fleet: fleetName, Cluster: clusterName, client: c, rm: rm}, nil
}

// Client is the cluster's client.
func (a *Applier) Client() client.Client { return a.client }

// ReadRecord reads the cluster's record of the Applier's fleet; nil before
// the first apply.
func (a *Applier) ReadRecord(ctx context.Context) (*Record, error) {
	return ReadRecord(ctx, a.client, a.Fleet)
}

// WriteRecord writes rec, with optimistic concurrency (ErrConflict when
// another writer was first).
func (a *Applier) WriteRecord(ctx context.Context, rec *Record) error {
	return WriteRecord(ctx, a.client, rec)
}

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

// Apply applies objs (applyStaged: only those whose content changed or
// whose ownership drifted since prev; each once, without ssa's GET and
// dry-run, since the rollout dry-ran them), waits until they are healthy,
// then prunes what prev's inventory held that objs no longer do. prev may be nil
// (first apply). On a health failure the objects stay applied and the
// error names the unhealthy objects (with FailFast, the failed ones);
// nothing is pruned.
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
	cs, fps, err := a.applyStaged(ctx, toApply, applyOpts, masker, inventorySet(prevInv))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: apply: %w", a.Cluster, masker.wrap(err))
	}
	// The health wait covers what was sent; the objects not sent were
	// healthy when the record was written, and polling them would cost a
	// LIST per kind and namespace every interval.
	sent := withHealth(toApply)
	for _, o := range same { // in the result, as ssa's unchanged
		cs.Add(ssa.ChangeSetEntry{ObjMetadata: object.UnstructuredToObjMetadata(o), GroupVersion: o.GroupVersionKind().Version,
			Subject: ssautils.FmtUnstructured(o), Action: ssa.UnchangedAction})
	}
	res := &Result{Hashes: hashes}
	for _, e := range cs.Entries {
		res.Applied = append(res.Applied, ObjectChange{ID: idOfEntry(e), Action: e.Action.String()})
	}
	// The last stage's fingerprints came with the apply's responses; the
	// cluster definitions' are listed now, before the health wait, to leave
	// other writers the smallest window to slip a change into the baseline.
	// An error only costs a re-apply later. Objects not sent keep the
	// fingerprint the drift check just confirmed.
	var defs []ObjectRef
	for _, o := range toApply {
		if _, ok := fps[RefOf(o).String()]; !ok {
			defs = append(defs, RefOf(o))
		}
	}
	res.Fingerprints = fps
	if len(defs) > 0 {
		got, _ := a.fingerprints(ctx, defs)
		for id, fp := range got {
			res.Fingerprints[id] = fp
		}
	}
	for _, o := range same {
		id := RefOf(o).String()
		res.Fingerprints[id] = prev.Fingerprints[id]
	}
	if err := a.waitHealthy(ctx, sent, opts); err != nil {
		return res, &UnhealthyError{Cluster: a.Cluster, Err: masker.wrap(err)}
	}
	res.Inventory, res.Pruned, res.Kept, err = a.prune(ctx, objs, prevInv)
	return res, err
}

// statusless are kinds that kstatus reports Current as soon as they exist
// (they have no status, conditions or generation to observe): once their
// apply succeeded they are healthy, and polling them would LIST their full
// contents (ConfigMaps and Secrets are most of a render's bytes) every
// interval for nothing. A Service is the same unless it is of type
// LoadBalancer (kstatus waits for its cluster IP).
var statusless = map[schema.GroupKind]bool{
	{Kind: "ConfigMap"}: true, {Kind: "Secret"}: true, {Kind: "ServiceAccount"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}: true, {Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}: true, {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
}

// withHealth returns the identities of the objects of objs whose health is
// worth a poll.
func withHealth(objs []*unstructured.Unstructured) object.ObjMetadataSet {
	out := make(object.ObjMetadataSet, 0, len(objs))
	for _, o := range objs {
		gk := o.GroupVersionKind().GroupKind()
		if statusless[gk] {
			continue
		}
		if gk == (schema.GroupKind{Kind: "Service"}) {
			if t, _, _ := unstructured.NestedString(o.Object, "spec", "type"); t != "LoadBalancer" {
				continue
			}
		}
		out = append(out, object.UnstructuredToObjMetadata(o))
	}
	return out
}

// quickPolls is how often health is polled in the first seconds of a wait,
// before opts' interval takes over: every 200 ms for the first second, then
// every 500 ms until the third. Most objects are healthy within a second or
// two of their apply (a Deployment once its controller, the scheduler and
// the kubelet have acted), and a wait that ends up to an interval after the
// last object turned healthy would cost that much of every wave. Each poll
// costs one LIST per kind and namespace of the set.
var quickPolls = []struct{ every, until time.Duration }{
	{200 * time.Millisecond, time.Second},
	{500 * time.Millisecond, 3 * time.Second},
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
// sending those again would only cost an apply each, and a poll of their
// health.
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

// applyWorkers is how many objects of the last stage are applied at once.
const applyWorkers = 8

// applyStaged applies objs in ssa's stages — cluster definitions (CRDs,
// namespaces, cluster roles) and classes first, with ssa's ApplyAllStaged,
// which waits for each of those stages — then the last stage, where nearly
// all objects are, by applyDirect. It returns what was done to each object
// and the fingerprint of each object of the last stage, from the apply's
// response.
func (a *Applier) applyStaged(ctx context.Context, objs []*unstructured.Unstructured, opts ssa.ApplyOptions, masker *secretMasker, known map[objectKey]bool) (*ssa.ChangeSet, map[string]string, error) {
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
			return nil, nil, err
		}
		cs.Append(staged.Entries)
	}
	// Custom resources of a CRD sent in this apply could not be dry-run
	// before it (DryRun skips them); now that the CRD is served, they are,
	// before any of the last stage is written.
	if err := a.dryRunNewKinds(ctx, first, rest, masker); err != nil {
		return nil, nil, err
	}
	entries, fps, err := a.applyDirect(ctx, rest, opts, known)
	if err != nil {
		return nil, nil, err
	}
	cs.Append(entries)
	return cs, fps, nil
}

// dryRunNewKinds dry-runs the objects of rest whose kind a
// CustomResourceDefinition of defs defines.
func (a *Applier) dryRunNewKinds(ctx context.Context, defs, rest []*unstructured.Unstructured, masker *secretMasker) error {
	kinds := crdKinds(defs)
	if len(kinds) == 0 {
		return nil
	}
	var crs []*unstructured.Unstructured
	for _, o := range rest {
		if gvk := o.GroupVersionKind(); kinds[gvk.Group+"/"+gvk.Kind] {
			crs = append(crs, o.DeepCopy()) // o is applied next, as rendered
		}
	}
	return a.dryRunPrepared(ctx, crs, nil, masker)
}

// applyDirect server-side applies each of objs once, applyWorkers at a
// time, under the field manager "convoy" with forced ownership, and takes
// each object's fingerprint from the response.
//
// Unlike ssa's ApplyAll it sends no GET and no dry-run per object: every
// object it is given has already been dry-run (DryRun before any write of
// the rollout, or dryRunNewKinds), and it is only given objects whose
// content changed or whose ownership drifted (splitUnchanged), so ssa's
// per-object drift check would find a change in each. That halves the
// requests of an apply: one per object instead of three.
//
// The action is "configured" for an object of the previous inventory
// (known); for the others it is read from the response: "created" when the
// object's creation time is the time of convoy's apply entry (the API
// server sets both on a create, to the second), "configured" otherwise. An apply the API server
// refuses as an immutable-field change is retried once, after deleting and
// recreating the object, when it is annotated convoy.dev/force: enabled
// (ssa's ForceSelector, as in ApplyAll). Every failed object is named.
func (a *Applier) applyDirect(ctx context.Context, objs []*unstructured.Unstructured, opts ssa.ApplyOptions, known map[objectKey]bool) ([]ssa.ChangeSetEntry, map[string]string, error) {
	entries := make([]ssa.ChangeSetEntry, len(objs))
	prints := make([]string, len(objs))
	errs := make([]error, len(objs))
	var g errgroup.Group
	g.SetLimit(applyWorkers)
	for i, o := range objs {
		g.Go(func() error {
			subject := ssautils.FmtUnstructured(o)
			live := o.DeepCopy() // the request body stays as rendered
			err := a.client.Patch(ctx, live, client.Apply, client.ForceOwnership, client.FieldOwner(FieldManager))
			if err != nil && ssaerrors.IsImmutableError(err) && ssautils.AnyInMetadata(o, opts.ForceSelector) {
				live = o.DeepCopy()
				err = a.recreate(ctx, live, opts.WaitInterval)
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s apply failed: %w", subject, err)
				return nil
			}
			action := ssa.ConfiguredAction
			if !known[keyOf(RefOf(o))] && createdBy(live, FieldManager) {
				action = ssa.CreatedAction
			}
			entries[i] = ssa.ChangeSetEntry{ObjMetadata: object.UnstructuredToObjMetadata(o),
				GroupVersion: o.GroupVersionKind().Version, Subject: subject, Action: action}
			prints[i] = Fingerprint(live.GetManagedFields())
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	fps := make(map[string]string, len(objs))
	for i, o := range objs {
		if prints[i] != "" {
			fps[RefOf(o).String()] = prints[i]
		}
	}
	return entries, fps, nil
}

// recreate deletes the live object named by o, waits until it is gone
// (finalizers) and applies o again: ssa's answer to an immutable field.
func (a *Applier) recreate(ctx context.Context, o *unstructured.Unstructured, every time.Duration) error {
	desired := o.DeepCopy()
	existing := &unstructured.Unstructured{}
	existing.SetGroupVersionKind(o.GroupVersionKind())
	key := client.ObjectKeyFromObject(o)
	if err := a.client.Get(ctx, key, existing); err != nil {
		return err // a missing object cannot have an immutable field
	}
	if err := a.client.Delete(ctx, existing, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("immutable field detected, failed to delete object: %w", err)
	}
	err := wait.PollUntilContextCancel(ctx, every, true, func(ctx context.Context) (bool, error) {
		err := a.client.Get(ctx, key, existing)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("immutable field detected, failed to wait for object to be deleted: %w", err)
	}
	*o = *desired
	return a.client.Patch(ctx, o, client.Apply, client.ForceOwnership, client.FieldOwner(FieldManager))
}

// createdBy reports whether the applied object o was created by manager's
// apply: the API server stamps the creation time and the manager's entry
// in the same request, to the second (a second apart when they straddle
// one; a flaky TestApplySendsEachObjectOnce saw it under load).
func createdBy(o *unstructured.Unstructured, manager string) bool {
	created := o.GetCreationTimestamp()
	for _, e := range o.GetManagedFields() {
		if e.Manager == manager && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" {
			// Both times are whole seconds, taken at two moments of the
			// one create request: they may straddle a second.
			if e.Time == nil {
				return false
			}
			d := e.Time.Sub(created.Time)
			return d >= 0 && d <= time.Second
		}
	}
	return false
}

// idOfEntry returns the object ID (ObjectRef.String) of a change set
// entry. ObjMetadata has the group but no version, and the entry's
// GroupVersion is, despite its name, the object's version alone.
func idOfEntry(e ssa.ChangeSetEntry) string {
	m := e.ObjMetadata
	return ObjectRef{GVK: m.GroupKind.WithVersion(e.GroupVersion), Namespace: m.Namespace, Name: m.Name}.String()
}
