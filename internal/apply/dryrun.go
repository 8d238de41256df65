package apply

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// dryRunNamespace stands in for a namespace that the same apply creates:
// its objects are dry-run there, so schema and admission are still checked.
const dryRunNamespace = "default"

// Rejection is one object the API server refused in a dry-run.
type Rejection struct {
	ID      string
	Message string
}

// RejectedError lists every object of a cluster that the API server
// rejected in the server-side dry-run.
type RejectedError struct {
	Cluster    string
	Rejections []Rejection
}

func (e *RejectedError) Error() string {
	lines := make([]string, len(e.Rejections))
	for i, r := range e.Rejections {
		lines[i] = fmt.Sprintf("cluster %s: %s rejected: %s", e.Cluster, r.ID, r.Message)
	}
	return strings.Join(lines, "\n")
}

// DryRun server-side applies every object with dryRun=All and returns a
// *RejectedError naming each object the API server refuses (schema errors,
// unknown kinds, admission denials). It writes nothing.
//
// Objects in a namespace that does not exist yet but is created by the same
// set are dry-run in the "default" namespace instead. Custom resources whose
// CustomResourceDefinition is in the same set cannot be dry-run before the
// CRD exists and are skipped; the real apply still checks them.
func (a *Applier) DryRun(ctx context.Context, objs []*unstructured.Unstructured) error {
	objs = a.prepare(objs)
	masker := newSecretMasker(objs)
	newNS := map[string]bool{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind().String() == "Namespace" {
			newNS[o.GetName()] = true
		}
	}
	if len(newNS) > 0 {
		var list corev1.NamespaceList
		if err := a.client.List(ctx, &list); err != nil {
			return fmt.Errorf("cluster %s: list namespaces: %w", a.Cluster, err)
		}
		for _, ns := range list.Items {
			delete(newNS, ns.Name)
		}
	}
	newKinds := crdKinds(objs)
	var checked []*unstructured.Unstructured
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if newKinds[gvk.Group+"/"+gvk.Kind] {
			if _, err := a.client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); meta.IsNoMatchError(err) {
				continue
			}
		}
		checked = append(checked, o)
	}
	return a.dryRunPrepared(ctx, checked, newNS, masker)
}

// crdKinds returns the "group/kind" of each CustomResourceDefinition of objs.
func crdKinds(objs []*unstructured.Unstructured) map[string]bool {
	kinds := map[string]bool{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind().String() == "CustomResourceDefinition.apiextensions.k8s.io" {
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			kinds[group+"/"+kind] = true
		}
	}
	return kinds
}

// dryRunPrepared dry-runs each of objs (already prepared), 16 at a time,
// objects of a namespace in newNS (created by the same apply) in
// dryRunNamespace. It overwrites objs with the API server's answers: the
// caller passes copies it owns.
func (a *Applier) dryRunPrepared(ctx context.Context, objs []*unstructured.Unstructured, newNS map[string]bool, masker *secretMasker) error {
	var (
		mu   sync.Mutex
		rejs []Rejection
		g    errgroup.Group
	)
	g.SetLimit(16)
	for _, o := range objs {
		id := RefOf(o).String()
		if ns := o.GetNamespace(); ns != "" && newNS[ns] {
			o.SetNamespace(dryRunNamespace)
		}
		g.Go(func() error {
			err := a.client.Patch(ctx, o, client.Apply, client.DryRunAll, client.ForceOwnership, client.FieldOwner(FieldManager))
			if err == nil {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			rejs = append(rejs, Rejection{ID: id, Message: masker.mask(rejectionMessage(err))})
			return nil
		})
	}
	_ = g.Wait()
	if len(rejs) == 0 {
		return nil
	}
	sort.Slice(rejs, func(i, j int) bool { return rejs[i].ID < rejs[j].ID })
	return &RejectedError{Cluster: a.Cluster, Rejections: rejs}
}

func rejectionMessage(err error) string {
	if status, ok := err.(apierrors.APIStatus); ok {
		return status.Status().Message
	}
	return err.Error()
}
