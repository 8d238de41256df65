package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/rollout"
)

// childDrift is `convoy-bench drift --repo DIR --kubeconfig F`: one drift
// reconciliation as the agent runs it on its schedule (plan the checked-out
// revision, then rollout.Runner.Reconcile: read each cluster's record, one
// metadata LIST per kind and namespace, re-apply only what drifted). It runs
// in its own process so that its CPU and peak RSS are measured like the
// other clients'. It prints the outcome as JSON with the time of each half.
func childDrift(args []string) error {
	fs := flag.NewFlagSet("drift", flag.ContinueOnError)
	repo := fs.String("repo", "", "config repository (a git work tree)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig with a context per cluster")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	out, err := exec.Command("git", "-C", *repo, "rev-parse", "HEAD").Output()
	if err != nil {
		return fmt.Errorf("revision of %s: %w", *repo, err)
	}
	rev := strings.TrimSpace(string(out))
	f, err := fleet.Load(*repo)
	if err != nil {
		return err
	}
	began := time.Now()
	ch := &change.Change{Revision: rev, Category: change.Normal,
		PullRequest: &change.PullRequest{Number: 1, Author: "alice", Body: "## Rollback\nRevert the merge.\n", Merged: true},
		Approvals:   []change.Approval{{User: "bob", Permission: "write", Type: change.TypeUser}}}
	plan, err := (&rollout.Planner{}).Plan(ctx, rollout.PlanInput{RepoDir: *repo, Revision: rev, Fleet: f, Change: ch, Now: time.Now()})
	if err != nil {
		return err
	}
	planned := time.Since(began)
	runner := &rollout.Runner{Fleet: f, Connect: (&rollout.Clusters{Kubeconfig: *kubeconfig}).Connect(f.Name)}
	began = time.Now()
	res, err := runner.Reconcile(ctx, plan)
	if err != nil {
		return err
	}
	for _, c := range res.Clusters {
		if c.Action != rollout.ReconcileInSync {
			return fmt.Errorf("cluster %s: reconcile %s (%s%s), want in-sync", c.Name, c.Action, c.Reason, c.Error)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"plan_ns": planned, "reconcile_ns": time.Since(began), "outcome": res,
	})
}
