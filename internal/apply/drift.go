package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// listPageSize bounds one page of a drift check's metadata lists; a
// (kind, namespace) pair with fewer objects costs exactly one request.
const listPageSize = 2000

// Drift reports which objects of rec's inventory no longer hold what convoy
// applied, sorted by ID. It costs one metadata-only LIST per (apiVersion,
// kind, namespace) of the inventory, selected by the owner labels, and
// nothing per object: no GET, no dry-run.
//
// It compares fingerprints, not objects. A fingerprint (Fingerprint) is a
// short hash of the managedFields entry of the field manager "convoy" with
// operation Apply: the set of fields convoy owns, and the apiVersion it
// applied them at. Server-side apply moves a field's ownership to whoever
// changes its value, so when another writer edits, patches, updates, scales
// or removes a field convoy set (kubectl edit, kubectl patch, a client
// Update, a forced apply by another manager), that field leaves convoy's set
// and the fingerprint changes. An object that is missing, or that lost the
// owner labels, drifted too. An inventory ID that rec holds no fingerprint
// for (a record written before fingerprints, or one whose capture failed)
// counts as drifted, so that Correct re-applies and fingerprints it: unknown
// state is re-applied, never trusted.
//
// Not drift, by design: fields convoy never set (replicas managed by an
// HPA, annotations and labels added by others, defaults, status), and
// writes that leave every convoy field with its value.
//
// Not caught: a writer that impersonates the field manager "convoy" with an
// Apply (its changes stay convoy's), a change that keeps the set of owned
// fields while bypassing field management (a direct etcd write, a mutating
// admission webhook acting on convoy's own request), and a change made
// between an apply and the fingerprint taken right after it. A
// re-serialised entry (an API version migration of a custom resource) is a
// false positive, which only costs one harmless re-apply.
func (a *Applier) Drift(ctx context.Context, rec *Record) ([]string, error) {
	refs := make([]ObjectRef, 0, len(rec.Inventory))
	ids := make([]string, 0, len(rec.Inventory))
	for _, id := range rec.Inventory {
		ref, err := ParseRef(id)
		if err != nil {
			continue // not ours to interpret; prune drops it too
		}
		refs = append(refs, ref)
		ids = append(ids, id)
	}
	live, err := a.fingerprints(ctx, refs)
	if err != nil {
		return nil, err
	}
	var drifted []string
	for i, ref := range refs {
		want := rec.Fingerprints[ids[i]]
		if got, ok := live[ref.String()]; !ok || want == "" || got != want {
			drifted = append(drifted, ids[i])
		}
	}
	sort.Strings(drifted)
	return drifted, nil
}

// Correct re-applies, with server-side apply under the field manager
// "convoy" and forced ownership, exactly the objects of objs whose IDs are
// in drifted (as Drift returned them), Namespaces and
// CustomResourceDefinitions first. It costs one request per object: each
// apply's response carries the new fingerprint. It then writes rec with the
// refreshed fingerprints, failing with ErrConflict when another writer
// changed the record since it was read.
//
// It returns the IDs it re-applied, sorted. Drifted IDs that objs does not
// render (inventory entries whose prune failed) are left to the next
// rollout's prune. On an apply error the other objects are still corrected
// and recorded; the error names each failed object.
func (a *Applier) Correct(ctx context.Context, objs []*unstructured.Unstructured, drifted []string, rec *Record) ([]string, error) {
	wanted := make(map[objectKey]string, len(drifted))
	for _, id := range drifted {
		if ref, err := ParseRef(id); err == nil {
			wanted[keyOf(ref)] = id
		}
	}
	var defs, rest []*unstructured.Unstructured
	for _, o := range a.prepare(objs) {
		if _, ok := wanted[keyOf(RefOf(o))]; !ok {
			continue
		}
		switch o.GroupVersionKind().GroupKind().String() {
		case "Namespace", "CustomResourceDefinition.apiextensions.k8s.io":
			defs = append(defs, o)
		default:
			rest = append(rest, o)
		}
	}
	if len(defs)+len(rest) == 0 {
		return nil, nil
	}
	fps := map[string]string{}
	var errs []error
	for _, stage := range [][]*unstructured.Unstructured{defs, rest} {
		got, err := a.applyEach(ctx, stage)
		for k, fp := range got {
			fps[wanted[k]] = fp
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	corrected := make([]string, 0, len(fps))
	for id := range fps {
		corrected = append(corrected, id)
	}
	sort.Strings(corrected)
	if len(corrected) == 0 {
		return nil, fmt.Errorf("cluster %s: correct drift: %w", a.Cluster, errors.Join(errs...))
	}

	inInventory := make(map[string]bool, len(rec.Inventory))
	for _, id := range rec.Inventory {
		inInventory[id] = true
	}
	next := make(map[string]string, len(rec.Inventory))
	for id, fp := range rec.Fingerprints {
		if inInventory[id] {
			next[id] = fp
		}
	}
	for id, fp := range fps {
		if inInventory[id] {
			next[id] = fp
		}
	}
	rec.Fingerprints = next
	rec.CorrectedAt = time.Now().UTC()
	rec.Corrected = len(corrected)
	if err := WriteRecord(ctx, a.client, rec); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return corrected, fmt.Errorf("cluster %s: correct drift: %w", a.Cluster, errors.Join(errs...))
	}
	return corrected, nil
}

// applyEach applies objs concurrently and returns the fingerprint of each
// object it applied, from the apply's response.
func (a *Applier) applyEach(ctx context.Context, objs []*unstructured.Unstructured) (map[objectKey]string, error) {
	var (
		mu   sync.Mutex
		out  = map[objectKey]string{}
		errs []error
		g    errgroup.Group
	)
	g.SetLimit(8)
	for _, o := range objs {
		g.Go(func() error {
			ref := RefOf(o)
			err := a.client.Patch(ctx, o, client.Apply, client.ForceOwnership, client.FieldOwner(FieldManager))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s apply failed: %w", ref, err))
				return nil
			}
			if fp := Fingerprint(o.GetManagedFields()); fp != "" {
				out[keyOf(ref)] = fp
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return out, errors.Join(errs...)
}

// Fingerprint is the 16-hex-digit hash of the managedFields entry of the
// field manager "convoy" with operation Apply on the main resource: its
// apiVersion and its fields in a canonical JSON form. It is "" when there
// is no such entry.
func Fingerprint(entries []metav1.ManagedFieldsEntry) string {
	for _, e := range entries {
		if e.Manager != FieldManager || e.Operation != metav1.ManagedFieldsOperationApply || e.Subresource != "" {
			continue
		}
		h := sha256.New()
		h.Write([]byte(e.APIVersion))
		h.Write([]byte{0})
		if e.FieldsV1 != nil {
			h.Write(canonicalJSON(e.FieldsV1.Raw))
		}
		return hex.EncodeToString(h.Sum(nil)[:8])
	}
	return ""
}

// canonicalJSON re-encodes raw with sorted keys: the API server's field
// set serialisation and a client's re-encoding of it may order keys
// differently.
func canonicalJSON(raw []byte) []byte {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}

// listScope is one metadata LIST of a drift check: a kind in one namespace,
// or across all namespaces (namespace allNamespaces) when convoy's objects
// of that kind live in several.
type listScope struct {
	gvk       schema.GroupVersionKind
	namespace string
}

// allNamespaces marks a listScope that spans every namespace. Cluster-scoped
// kinds have the namespace "" and need no such scope.
const allNamespaces = "\x00all"

// fingerprints returns the live fingerprint of each of refs, by ID, with
// one metadata-only LIST per kind (per kind and namespace where the cluster
// refuses a list across namespaces), selected by the owner labels: a drift
// check of 1,000 objects of 6 kinds in 10 namespaces costs 6 requests.
// Objects that are missing, unlabelled or of a kind the server no longer
// serves have no entry.
func (a *Applier) fingerprints(ctx context.Context, refs []ObjectRef) (map[string]string, error) {
	byKind := map[schema.GroupVersionKind]map[string]map[string]bool{} // kind → namespace → names
	for _, r := range refs {
		if byKind[r.GVK] == nil {
			byKind[r.GVK] = map[string]map[string]bool{}
		}
		if byKind[r.GVK][r.Namespace] == nil {
			byKind[r.GVK][r.Namespace] = map[string]bool{}
		}
		byKind[r.GVK][r.Namespace][r.Name] = true
	}
	var (
		mu   sync.Mutex
		out  = make(map[string]string, len(refs))
		errs []error
		g    errgroup.Group
	)
	g.SetLimit(8)
	for gvk, namespaces := range byKind {
		g.Go(func() error {
			got, err := a.kindFingerprints(ctx, gvk, namespaces)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			for id, fp := range got {
				out[id] = fp
			}
			return nil
		})
	}
	_ = g.Wait()
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, fmt.Errorf("cluster %s: drift check: %w", a.Cluster, errors.Join(errs...))
	}
	return out, nil
}

// kindFingerprints lists one kind: in its one namespace, or across all
// namespaces, falling back to one list per namespace when that is
// forbidden (convoy's rights in the cluster may be namespaced).
func (a *Applier) kindFingerprints(ctx context.Context, gvk schema.GroupVersionKind, namespaces map[string]map[string]bool) (map[string]string, error) {
	if len(namespaces) > 1 {
		got, err := a.listFingerprints(ctx, listScope{gvk, allNamespaces}, namespaces)
		if err == nil || !apierrors.IsForbidden(err) {
			return got, err
		}
	}
	out := map[string]string{}
	for ns, names := range namespaces {
		got, err := a.listFingerprints(ctx, listScope{gvk, ns}, map[string]map[string]bool{ns: names})
		if err != nil {
			return nil, err
		}
		for id, fp := range got {
			out[id] = fp
		}
	}
	return out, nil
}

// listFingerprints runs one paged metadata LIST of s and keeps the objects
// named in wanted (namespace → names).
func (a *Applier) listFingerprints(ctx context.Context, s listScope, wanted map[string]map[string]bool) (map[string]string, error) {
	out := map[string]string{}
	opts := []client.ListOption{
		client.MatchingLabels{LabelFleet: a.Fleet, LabelCluster: a.Cluster},
		client.Limit(listPageSize),
	}
	if s.namespace != "" && s.namespace != allNamespaces {
		opts = append(opts, client.InNamespace(s.namespace))
	}
	cont := ""
	for {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(s.gvk.GroupVersion().WithKind(s.gvk.Kind + "List"))
		if err := a.client.List(ctx, list, append(opts, client.Continue(cont))...); err != nil {
			if meta.IsNoMatchError(err) {
				return out, nil // the kind is gone: every object of it drifted
			}
			where := s.namespace
			if where == allNamespaces {
				where = "all namespaces"
			}
			return nil, fmt.Errorf("list %s in %q: %w", s.gvk.GroupVersion().WithKind(s.gvk.Kind), where, err)
		}
		for i := range list.Items {
			item := &list.Items[i]
			if !wanted[item.Namespace][item.Name] {
				continue
			}
			if fp := Fingerprint(item.ManagedFields); fp != "" {
				ref := ObjectRef{GVK: s.gvk, Namespace: item.Namespace, Name: item.Name}
				out[ref.String()] = fp
			}
		}
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}
