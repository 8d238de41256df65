package commands

import (
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/convoy-gitops/convoy/internal/analysis"
	"github.com/convoy-gitops/convoy/internal/apply"
	"github.com/convoy-gitops/convoy/internal/fleet"
	"github.com/convoy-gitops/convoy/internal/source"
)

// clusterStatus is one cluster's line of convoy status.
type clusterStatus struct {
	Name             string              `json:"name"`
	Wave             string              `json:"wave,omitempty"`
	Revision         string              `json:"revision"`
	PreviousRevision string              `json:"previousRevision,omitempty"`
	AppliedAt        *time.Time          `json:"appliedAt,omitempty"`
	Status           string              `json:"status"`
	Health           string              `json:"health,omitempty"`
	FailedRevision   string              `json:"failedRevision,omitempty"`
	Reason           string              `json:"reason,omitempty"`
	Change           *apply.RecordChange `json:"change,omitempty"`
	Objects          int                 `json:"objects"`
	// Drift is what a read-only drift check found now: "none", or the
	// IDs of the objects whose convoy-owned fields were changed by others.
	Drift       string     `json:"drift,omitempty"`
	Drifted     []string   `json:"drifted,omitempty"`
	CorrectedAt *time.Time `json:"correctedAt,omitempty"` // the last drift correction
	Corrected   int        `json:"corrected,omitempty"`
	Error       string     `json:"error,omitempty"`
	// Analysis is where the analyses that gate the cluster stand
	// (pending, passed, failed), with their last measurements.
	Analysis     string                 `json:"analysis,omitempty"`
	Measurements []analysis.Measurement `json:"measurements,omitempty"`
}

func newStatusCmd() *cobra.Command {
	var repo, kubeconfig, output string
	cmd := &cobra.Command{
		Use:   "status [--kubeconfig F] [--repo DIR] [-o text|json]",
		Short: "Show each cluster's applied revision, change, objects and health",
		Long: `Status reads the record convoy keeps in each cluster (the ConfigMap
convoy-system/convoy-<fleet>). With --repo the fleet's clusters are read, in
wave order; without it, every context of the kubeconfig. A cluster that
cannot be reached is reported, not skipped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return withCode(ExitError, fmt.Errorf("--output %q: expected text or json", output))
			}
			targets, fleetName, err := statusTargets(repo, kubeconfig)
			if err != nil {
				return withCode(ExitError, err)
			}
			connector := &apply.Connector{KubeconfigFile: kubeconfig}
			var rows []clusterStatus
			for _, c := range targets {
				rows = append(rows, readStatus(cmd, connector, fleetName, c))
			}
			return writeStatus(cmd, output, rows)
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "config repository directory (default: every kubeconfig context)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// statusTargets lists the clusters to read: the fleet's, or one per
// kubeconfig context. fleetName is empty without a fleet: every convoy
// record in the cluster is then read.
func statusTargets(repo, kubeconfig string) ([]*fleet.Cluster, string, error) {
	if repo != "" {
		f, err := fleet.Load(repo)
		if err != nil {
			return nil, "", err
		}
		var out []*fleet.Cluster
		for _, wave := range f.WaveClusters() {
			out = append(out, wave...)
		}
		return out, f.Name, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	kc, err := rules.Load()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	names := make([]string, 0, len(kc.Contexts))
	for n := range kc.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*fleet.Cluster, len(names))
	for i, n := range names {
		out[i] = &fleet.Cluster{Name: n, Kubeconfig: fleet.KubeconfigRef{Context: n}}
	}
	return out, "", nil
}

func readStatus(cmd *cobra.Command, connector *apply.Connector, fleetName string, c *fleet.Cluster) clusterStatus {
	row := clusterStatus{Name: c.Name, Wave: c.Wave, Status: "unknown"}
	ctx := cmd.Context()
	cfg, err := connector.RESTConfig(ctx, c)
	if err != nil {
		row.Error = err.Error()
		return row
	}
	a, err := apply.New(cfg, fleetName, c.Name)
	if err != nil {
		row.Error = err.Error()
		return row
	}
	var recs []*apply.Record
	if fleetName != "" {
		rec, err := apply.ReadRecord(ctx, a.Client(), fleetName)
		if err == nil && rec != nil {
			recs = append(recs, rec)
		}
		if err != nil {
			row.Error = err.Error()
			return row
		}
	} else if recs, err = apply.ListRecords(ctx, a.Client()); err != nil {
		row.Error = err.Error()
		return row
	}
	if len(recs) == 0 {
		row.Status = "never applied"
		return row
	}
	rec := recs[0]
	at := rec.AppliedAt
	row.Revision, row.PreviousRevision, row.AppliedAt = rec.Revision, rec.PreviousRevision, &at
	row.Status, row.Health, row.FailedRevision, row.Reason = rec.Status, rec.Health, rec.FailedRevision, rec.Reason
	row.Change, row.Objects = &rec.Change, len(rec.Inventory)
	row.Analysis, row.Measurements = rec.Analysis, rec.Measurements
	if !rec.CorrectedAt.IsZero() {
		ct := rec.CorrectedAt
		row.CorrectedAt, row.Corrected = &ct, rec.Corrected
	}
	if rec.Status == apply.StatusApplied {
		drifted, err := a.Drift(ctx, rec)
		switch {
		case err != nil:
			row.Drift = "unknown: " + err.Error()
		case len(drifted) == 0:
			row.Drift = "none"
		default:
			row.Drift, row.Drifted = fmt.Sprintf("%d drifted", len(drifted)), drifted
		}
	}
	return row
}

func writeStatus(cmd *cobra.Command, output string, rows []clusterStatus) error {
	w := cmd.OutOrStdout()
	if output == "json" {
		b, err := json.MarshalIndent(map[string]any{"clusters": rows}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tWAVE\tREVISION\tSTATUS\tHEALTH\tOBJECTS\tDRIFT\tAPPLIED\tCHANGE")
	for _, r := range rows {
		applied, changeDesc := "-", "-"
		if r.AppliedAt != nil {
			applied = r.AppliedAt.Format(time.RFC3339)
		}
		if r.Change != nil && r.Change.Category != "" {
			changeDesc = r.Change.Category
			if r.Change.PullRequest > 0 {
				changeDesc += fmt.Sprintf(" #%d", r.Change.PullRequest)
			}
			if len(r.Change.Approvers) > 0 {
				changeDesc += fmt.Sprintf(" approved by %v", r.Change.Approvers)
			}
			switch r.Change.Rules {
			case "bootstrap":
				changeDesc += ", judged by its own rules (bootstrap)"
			case "base":
				changeDesc += ", judged by the rules of " + source.Short(r.Change.Base)
			case "pinned":
				changeDesc += ", judged by the pinned rules"
			}
			if n := len(r.Change.Commits); n > 1 {
				changeDesc += fmt.Sprintf(", %d commits", n)
			}
		}
		drift := r.Drift
		if drift == "" {
			drift = "-"
		}
		if r.CorrectedAt != nil {
			drift += fmt.Sprintf(" (corrected %d at %s)", r.Corrected, r.CorrectedAt.Format(time.RFC3339))
		}
		status := r.Status
		if r.Error != "" {
			status = "error: " + r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Name, r.Wave, source.Short(r.Revision), status, r.Health, r.Objects, drift, applied, changeDesc)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Analysis == "" {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s: analysis %s\n", r.Name, r.Analysis); err != nil {
			return err
		}
		for _, m := range r.Measurements {
			if _, err := fmt.Fprintf(w, "  %s at %s\n    %s\n", m, m.At.UTC().Format(time.RFC3339), m.Query); err != nil {
				return err
			}
		}
	}
	return nil
}
