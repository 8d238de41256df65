package apply

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/fluxcd/pkg/ssa"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Diff is what applying a render would change on a cluster, by object ID.
// It holds IDs only, never object contents, so Secret data cannot leak
// through it.
type Diff struct {
	Create    []string `json:"create"`
	Update    []string `json:"update"`
	Delete    []string `json:"delete"`
	Unchanged int      `json:"unchanged"`
}

// Diff dry-runs every object (ssa.Diff: a GET and a server-side dry-run
// apply each) and lists what an apply would create or update; what prev's
// inventory holds and objs do not would be pruned. Nothing is written.
func (a *Applier) Diff(ctx context.Context, objs []*unstructured.Unstructured, prev *Record) (*Diff, error) {
	objs = a.prepare(objs)
	d := &Diff{Create: []string{}, Update: []string{}, Delete: []string{}}
	var (
		mu   sync.Mutex
		errs []error
		g    errgroup.Group
	)
	g.SetLimit(16)
	for _, o := range objs {
		g.Go(func() error {
			id := RefOf(o).String()
			entry, _, _, err := a.rm.Diff(ctx, o, ssa.DefaultDiffOptions())
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("cluster %s: diff %s: %w", a.Cluster, id, err))
				return nil
			}
			switch entry.Action {
			case ssa.CreatedAction:
				d.Create = append(d.Create, id)
			case ssa.ConfiguredAction:
				d.Update = append(d.Update, id)
			default:
				d.Unchanged++
			}
			return nil
		})
	}
	_ = g.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	if prev != nil {
		current := map[objectKey]bool{}
		for _, o := range objs {
			current[keyOf(RefOf(o))] = true
		}
		for _, id := range prev.Inventory {
			if ref, err := ParseRef(id); err == nil && !current[keyOf(ref)] {
				d.Delete = append(d.Delete, id)
			}
		}
	}
	sort.Strings(d.Create)
	sort.Strings(d.Update)
	sort.Strings(d.Delete)
	return d, nil
}
