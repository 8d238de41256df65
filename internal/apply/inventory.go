package apply

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ObjectRef identifies one object by apiVersion, kind, namespace and name.
// Its string form is convoy's object ID: apps/v1/Deployment/ns/name,
// v1/ConfigMap/ns/name, v1/Namespace//name.
type ObjectRef struct {
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
}

// String returns the object ID.
func (r ObjectRef) String() string {
	return r.GVK.GroupVersion().String() + "/" + r.GVK.Kind + "/" + r.Namespace + "/" + r.Name
}

// RefOf returns the reference of a rendered or live object.
func RefOf(u *unstructured.Unstructured) ObjectRef {
	return ObjectRef{GVK: u.GroupVersionKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// ParseRef parses an object ID.
func ParseRef(id string) (ObjectRef, error) {
	parts := strings.Split(id, "/")
	var gv schema.GroupVersion
	switch len(parts) {
	case 4: // core group: v1/Kind/ns/name
		gv = schema.GroupVersion{Version: parts[0]}
		parts = parts[1:]
	case 5:
		gv = schema.GroupVersion{Group: parts[0], Version: parts[1]}
		parts = parts[2:]
	default:
		return ObjectRef{}, fmt.Errorf("object ID %q: want apiVersion/kind/namespace/name", id)
	}
	if gv.Version == "" || parts[0] == "" || parts[2] == "" {
		return ObjectRef{}, fmt.Errorf("object ID %q: want apiVersion/kind/namespace/name", id)
	}
	return ObjectRef{GVK: gv.WithKind(parts[0]), Namespace: parts[1], Name: parts[2]}, nil
}

// Unstructured returns an empty object with the reference's identity, for
// GETs and DELETEs.
func (r ObjectRef) Unstructured() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.GVK)
	u.SetNamespace(r.Namespace)
	u.SetName(r.Name)
	return u
}

// objectKey names a stored object whatever the version it is read at.
type objectKey struct{ group, kind, namespace, name string }

func keyOf(r ObjectRef) objectKey {
	return objectKey{r.GVK.Group, r.GVK.Kind, r.Namespace, r.Name}
}
