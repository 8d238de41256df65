// Package rollout takes one revision to every cluster of a fleet: policy
// gate first, a server-side dry-run of every cluster before any write, then
// waves strictly in order (clusters of a wave in parallel up to
// maxParallel), a bake after each healthy wave, failFast and rollback of a
// failed wave to the revision its clusters' records held. All state lives in
// the clusters' records, so an interrupted rollout resumes where it stopped.
package rollout
