package render

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ObjectID returns the object's ID, group/version/Kind/namespace/name
// ("apps/v1/Deployment/ns/name"); the core group has no group segment
// ("v1/ConfigMap/ns/name") and a cluster-scoped object has an empty
// namespace segment ("v1/Namespace//name").
func ObjectID(u *unstructured.Unstructured) string {
	return u.GetAPIVersion() + "/" + u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
}

// kindOrder puts the kinds that others depend on first. Kinds not listed
// come after the listed ones except the webhooks, which come last so that
// they cannot reject the objects applied with them.
var kindOrder = map[string]int{
	"Namespace":                0,
	"CustomResourceDefinition": 1,
	"PriorityClass":            2,
	"StorageClass":             2,
	"ResourceQuota":            3,
	"LimitRange":               3,
	"ServiceAccount":           4,
	"ClusterRole":              5,
	"Role":                     5,
	"ClusterRoleBinding":       6,
	"RoleBinding":              6,
	"ConfigMap":                7,
	"Secret":                   7,
	"PersistentVolume":         8,
	"PersistentVolumeClaim":    9,
	"NetworkPolicy":            10,
	"Service":                  11,
	"Deployment":               12,
	"StatefulSet":              12,
	"DaemonSet":                12,
	"Job":                      12,
	"CronJob":                  12,
	"HorizontalPodAutoscaler":  13,
	"PodDisruptionBudget":      13,
	"Ingress":                  14,

	"MutatingWebhookConfiguration":   100,
	"ValidatingWebhookConfiguration": 100,
}

// otherKinds is the rank of kinds missing from kindOrder (custom resources
// and the rarer built-in kinds).
const otherKinds = 50

// kindRank returns the sorting rank of kind.
func kindRank(kind string) int {
	if r, ok := kindOrder[kind]; ok {
		return r
	}
	return otherKinds
}

// sortObjects orders objects by kind rank, then by ID.
func sortObjects(objs []*unstructured.Unstructured) {
	type keyed struct {
		rank int
		id   string
		u    *unstructured.Unstructured
	}
	keys := make([]keyed, len(objs))
	for i, u := range objs {
		keys[i] = keyed{kindRank(u.GetKind()), ObjectID(u), u}
	}
	slices.SortStableFunc(keys, func(a, b keyed) int {
		if a.rank != b.rank {
			return cmp.Compare(a.rank, b.rank)
		}
		return strings.Compare(a.id, b.id)
	})
	for i, k := range keys {
		objs[i] = k.u
	}
}

// hashObjects returns the hex SHA-256 of the objects' canonical JSON (keys
// sorted, one object per line), in the given order.
func hashObjects(objs []*unstructured.Unstructured) (hash string, size int64, err error) {
	h := sha256.New()
	for _, u := range objs {
		b, err := json.Marshal(u.Object)
		if err != nil {
			return "", 0, err
		}
		h.Write(b)
		h.Write([]byte{'\n'})
		size += int64(len(b)) + 1
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}
