package rollout

// The record a successful apply leaves on its cluster.

import (
	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/change"
)

func (r *Runner) newRecord(plan *Plan, st *clusterState, inventory []string) *apply.Record {
	rec := &apply.Record{}
	if st.record != nil {
		*rec = *st.record // keeps the resourceVersion for optimistic concurrency
	}
	if rec.Revision != plan.Revision {
		rec.PreviousRevision = rec.Revision
	}
	rec.Fleet, rec.Cluster = r.Fleet.Name, st.target.Cluster.Name
	rec.Revision, rec.RenderHash = plan.Revision, st.target.Hash
	rec.AppliedAt = r.now().UTC()
	rec.Status, rec.Health, rec.Reason, rec.FailedRevision = apply.StatusApplied, "healthy", "", ""
	// The analyses of this revision have yet to run.
	rec.Analysis, rec.Measurements = "", nil
	if len(st.target.Analyses) > 0 {
		rec.Analysis = apply.AnalysisPending
	}
	rec.Verdict = string(st.target.Decision.Verdict)
	rec.Messages = nil
	for _, m := range st.target.Decision.Warn {
		rec.Messages = append(rec.Messages, "warn: "+m.Msg)
	}
	rec.Change = apply.RecordChange{}
	ch := st.target.Change
	if ch == nil {
		ch = plan.Change
	}
	if ch != nil {
		rec.Change.Category = ch.Category
		if ch.PullRequest != nil {
			rec.Change.PullRequest = ch.PullRequest.Number
		}
		for _, a := range change.Counted(ch, st.target.TrustedBots) {
			rec.Change.Approvers = append(rec.Change.Approvers, a.User)
		}
		for _, c := range ch.Commits {
			rec.Change.Commits = append(rec.Change.Commits, c.Revision)
		}
		rec.Change.Governance = ch.Governance
	}
	rec.Change.Base, rec.Change.Rules = st.target.Base, st.target.Origin
	rec.Agent = r.Agent
	rec.Inventory = inventory
	return rec
}
