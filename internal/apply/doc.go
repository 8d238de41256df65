// Package apply brings one cluster to a rendered set of objects: a
// server-side dry-run of every changed object before any write, a staged
// server-side apply under the field manager "convoy", a health wait with
// kstatus, a prune of what the cluster's previous inventory held and the
// new one does not, and the cluster's own record of what it runs (the
// ConfigMap convoy-system/convoy-<fleet>).
//
// The stages are fluxcd/pkg/ssa's: cluster definitions (namespaces, CRDs,
// cluster roles) and classes go through ssa's ApplyAllStaged, which waits
// for each; everything else, nearly every object, is then applied once per
// object by Applier.applyDirect. ssa's ApplyAll would first GET and dry-run
// each object to find out whether it drifted; convoy already knows — it
// sends only objects whose rendered hash changed since its record or whose
// ownership fingerprint drifted (one metadata LIST per kind), and it
// dry-ran them before the rollout wrote anything — so those two requests
// per object would be spent for nothing. A cold apply costs two requests
// per object (dry-run, apply) instead of four.
package apply
