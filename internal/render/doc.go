// Package render turns a cluster of a fleet into its Kubernetes objects: it
// runs kustomize (krusty, in process) on the cluster's kustomization
// directory, substitutes the cluster variables and returns the objects
// sorted, with a stable hash.
//
// The kustomize is sigs.k8s.io/kustomize/api with a patch that makes a
// build linear in the number of objects where upstream's is quadratic (its
// duplicate checks and name references) and lets the builds of one render
// share the YAML they parsed; go.mod replaces the module with
// internal/third_party/kustomize-api, whose README says what changed and
// how it is kept equal to upstream. TestKustomizeMatchesUpstream compares
// builds with the upstream CLI's.
//
// # Confinement
//
// A config repository is outside input. Kustomize reads it through a file
// system that refuses every path outside the repository directory, whether
// written as "../.." or reached through a symbolic link (paths are resolved
// with filepath.EvalSymlinks before the check); that refuses any file larger
// than MaxFileSize (4 MiB); and that is read-only. Kustomization files that
// name remote bases or files (git or HTTP URLs), inflate Helm charts or set a
// custom OpenAPI schema are refused before kustomize acts on them, so a
// render never touches the network. YAML files whose aliases kyaml cannot
// expand (an anchor whose value contains an alias of itself, or aliases
// that expand exponentially) are refused too: kyaml would overflow the
// stack, a fatal error that no recover catches, or exhaust memory. Plugins
// are disabled (types.DisabledPluginConfig: built-ins only, no exec or
// containerized KRM functions). Kustomize's own root-only load restriction stays on, so a
// repository renders the same here as with "kustomize build". A kustomize
// panic is recovered and returned as an error.
//
// The file system is observed once per render (a call of Cluster or All):
// symbolic link resolutions, file information, contents and the checks
// above are cached and shared by the render's clusters, so a base that
// every cluster uses is read once, and every cluster of the render sees the
// same repository even if it changes meanwhile. Nothing is kept between
// renders.
//
// Kustomize itself prints deprecation warnings for fields such as "bases",
// "commonLabels" and "patchesStrategicMerge" straight to os.Stderr; they
// cannot be captured without redirecting the process's stderr, so they are
// left alone.
//
// # Variables
//
// After the build, every string value of every object is searched for
// ${CLUSTER_NAME}, ${CLUSTER_ENVIRONMENT}, ${CLUSTER_REGION},
// ${CLUSTER_WAVE} and ${CLUSTER_LABEL_<KEY>} (see Variables). Any other
// ${...} is an error naming the object and field; $${X} is a literal ${X}.
//
// # Order and identity
//
// Objects are identified by ObjectID and sorted by a kind rank (Namespaces,
// then CRDs, quotas, RBAC, ConfigMaps and Secrets, Services, workloads,
// other kinds, webhooks last), then by ID. The apply stage does its own
// staging; this order only makes output and hashes stable. An ID that
// appears twice is an error naming both sources.
//
// # Concurrency
//
// Renders of different clusters run concurrently, with no lock around krusty.
// kyaml keeps the OpenAPI schema in process-wide state (kustomize#3659);
// since kyaml v0.13 that state has its own RWMutex, and rendering every
// cluster of fixtures/fleet from four goroutines at once, five times over,
// under the race detector reports no race (TestConcurrentRenders). What
// remains is semantic: a kustomization's "openapi" field replaces the schema
// for every build in the process, and kyaml keeps a custom schema even after
// a later build asks for the default, so that field is refused rather than
// every build serialized. kustomize is CPU- and allocation-bound, so
// concurrency gains at most GOMAXPROCS and costs nothing in safety.
//
// # Cost
//
// A render's time is kustomize's own build: 85–95 % of the CPU time of
// BenchmarkRenderWorkload, garbage collection of its allocations included.
// The patched kustomize removes the two costs that dominated it: its
// quadratic ID checks and name references, and parsing the shared bases
// again for every cluster (the clusters of one render share a
// resource.ParseCache, held by the repoCache, so each file's content is
// parsed once and copied for every build that reads it). What convoy adds
// is kept small: objects are converted from kustomize's YAML nodes directly
// (see toUnstructured) rather than through YAML and JSON encodings, and
// objects without variables skip the substitution walk.
package render
