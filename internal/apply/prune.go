package apply

// Pruning: deleting what convoy applied before and no longer renders.

import (
	"context"
	"fmt"
	"sort"

	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

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

// inventorySet returns the keys of the IDs of an inventory.
func inventorySet(inv []string) map[objectKey]bool {
	out := make(map[objectKey]bool, len(inv))
	for _, id := range inv {
		if ref, err := ParseRef(id); err == nil {
			out[keyOf(ref)] = true
		}
	}
	return out
}
