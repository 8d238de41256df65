// Package apply brings one cluster to a rendered set of objects: a
// server-side dry-run of every object before any write, a staged
// server-side apply with fluxcd/pkg/ssa under the field manager "convoy",
// a health wait with kstatus, a prune of what the cluster's previous
// inventory held and the new one does not, and the cluster's own record of
// what it runs (the ConfigMap convoy-system/convoy-<fleet>, DESIGN.md §6).
package apply
