package apply

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/convoy-gitops/convoy/internal/analysis"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels and annotations convoy reads and writes on cluster objects.
const (
	LabelFleet      = "convoy.dev/fleet"
	LabelCluster    = "convoy.dev/cluster"
	AnnotationPrune = "convoy.dev/prune" // "disabled": never pruned
	AnnotationForce = "convoy.dev/force" // "enabled": recreated on immutable field changes
	// StateNamespace holds each cluster's record of what convoy applied.
	StateNamespace = "convoy-system"
	// FieldManager is the server-side apply field manager of every write.
	FieldManager = "convoy"
)

// Record statuses.
const (
	StatusApplied    = "applied"     // Revision is applied and was healthy
	StatusFailed     = "failed"      // FailedRevision failed; Revision is what runs
	StatusRolledBack = "rolled-back" // FailedRevision failed and Revision was re-applied
)

// inventoryInlineMax is the size above which the inventory is gzipped into
// binaryData, keeping the ConfigMap well under etcd's 1.5 MiB object limit.
const inventoryInlineMax = 64 << 10

// At returns a copy of r to write over the record current was read as:
// r's content at current's version, for optimistic concurrency. current
// may be nil (no record yet).
func (r *Record) At(current *Record) *Record {
	c := *r
	c.resourceVersion = ""
	if current != nil {
		c.resourceVersion = current.resourceVersion
	}
	return &c
}

// Where the analyses of a cluster stand (Record.Analysis).
const (
	AnalysisPending = "pending"
	AnalysisPassed  = "passed"
	AnalysisFailed  = "failed"
)

// Record is a cluster's own account of what convoy applied there: the
// ConfigMap convoy-system/convoy-<fleet>. The agent keeps no
// other state; it resumes from these records.
type Record struct {
	Fleet            string       `json:"fleet"`
	Cluster          string       `json:"cluster"`
	Revision         string       `json:"revision"` // the revision that runs on the cluster
	PreviousRevision string       `json:"previousRevision,omitempty"`
	RenderHash       string       `json:"renderHash,omitempty"`
	AppliedAt        time.Time    `json:"appliedAt"`
	Status           string       `json:"status"`
	FailedRevision   string       `json:"failedRevision,omitempty"` // a revision that failed here; not retried until a newer one
	Reason           string       `json:"reason,omitempty"`
	Health           string       `json:"health"`
	Change           RecordChange `json:"change"`
	Verdict          string       `json:"verdict,omitempty"`
	Messages         []string     `json:"messages,omitempty"`
	// Analysis is where the analyses that gate the cluster's wave stand
	// at Revision: AnalysisPending until they pass, AnalysisPassed, or
	// AnalysisFailed; "" when none gates it.
	Analysis string `json:"analysis,omitempty"`
	// Measurements are the last measurement of each of those analyses:
	// query, value, condition, time and verdict.
	Measurements []analysis.Measurement `json:"measurements,omitempty"`
	Agent        string                 `json:"agent,omitempty"`
	Inventory    []string               `json:"-"` // object IDs convoy applied and owns
	// Fingerprints maps inventory IDs to the fingerprint of convoy's
	// server-side apply ownership when it was last applied (see Drift). An
	// inventory ID without one is unverified: the next drift check re-applies it.
	Fingerprints map[string]string `json:"-"`
	// Hashes maps inventory IDs to the hash of the object convoy last
	// applied (ObjectHash). An object whose rendered content has the same
	// hash and whose ownership did not drift is not sent again.
	Hashes map[string]string `json:"-"`
	// CorrectedAt is when drift was last corrected; Corrected counts the
	// objects re-applied then.
	CorrectedAt time.Time `json:"correctedAt,omitzero"`
	Corrected   int       `json:"corrected,omitempty"`

	resourceVersion string // for optimistic concurrency on write
}

// Applied reports whether the record's revision applied and was healthy,
// rather than failed or rolled back.
func (r *Record) Applied() bool { return r.Status == StatusApplied }

// RecordChange is the part of the change a record keeps.
type RecordChange struct {
	PullRequest int      `json:"pullRequest,omitempty"`
	Category    string   `json:"category,omitempty"`
	Approvers   []string `json:"approvers,omitempty"`
	// Commits are the commits the rollout carried, newest first.
	Commits []string `json:"commits,omitempty"`
	// Base is the trusted base whose rules judged the change; Rules says
	// where they came from: base, pinned or bootstrap.
	Base  string `json:"base,omitempty"`
	Rules string `json:"rules,omitempty"`
	// Governance names what the change edited of the rules.
	Governance []string `json:"governance,omitempty"`
}

// RecordName is the name of a fleet's record ConfigMap.
func RecordName(fleetName string) string { return "convoy-" + fleetName }

// ErrConflict means another writer changed the record since it was read.
var ErrConflict = errors.New("record changed by another writer")

// ReadRecord returns the cluster's record, or nil when there is none yet.
func ReadRecord(ctx context.Context, c client.Reader, fleetName string) (*Record, error) {
	var cm corev1.ConfigMap
	err := c.Get(ctx, client.ObjectKey{Namespace: StateNamespace, Name: RecordName(fleetName)}, &cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read record %s/%s: %w", StateNamespace, RecordName(fleetName), err)
	}
	return decodeRecord(&cm)
}

func decodeRecord(cm *corev1.ConfigMap) (*Record, error) {
	r := &Record{}
	if err := json.Unmarshal([]byte(cm.Data["record"]), r); err != nil {
		return nil, fmt.Errorf("record %s/%s: key record: %w", cm.Namespace, cm.Name, err)
	}
	inv, err := readKey(cm, "inventory")
	if err != nil {
		return nil, err
	}
	for _, id := range strings.Split(inv, "\n") {
		if id != "" {
			r.Inventory = append(r.Inventory, id)
		}
	}
	fps, err := readKey(cm, "fingerprints")
	if err != nil {
		return nil, err
	}
	r.Fingerprints = decodeFingerprints(fps, r.Inventory)
	hashes, err := readKey(cm, "hashes")
	if err != nil {
		return nil, err
	}
	r.Hashes = decodeFingerprints(hashes, r.Inventory)
	r.resourceVersion = cm.ResourceVersion
	return r, nil
}

// readKey returns the text of key, or of its gzipped form key.gz in
// binaryData.
func readKey(cm *corev1.ConfigMap, key string) (string, error) {
	gz, ok := cm.BinaryData[key+".gz"]
	if !ok {
		return cm.Data[key], nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return "", fmt.Errorf("record %s/%s: %s.gz: %w", cm.Namespace, cm.Name, key, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return "", fmt.Errorf("record %s/%s: %s.gz: %w", cm.Namespace, cm.Name, key, err)
	}
	return string(data), nil
}

// writeKey stores text under key, or gzipped under key.gz in binaryData
// when it is larger than inventoryInlineMax.
func writeKey(cm *corev1.ConfigMap, key, text string) error {
	if len(text) <= inventoryInlineMax {
		cm.Data[key] = text
		return nil
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(text)); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if cm.BinaryData == nil {
		cm.BinaryData = map[string][]byte{}
	}
	cm.BinaryData[key+".gz"] = buf.Bytes()
	return nil
}

// encodeFingerprints writes one line per inventory ID, in inventory order:
// the ID's fingerprint, or "-" when it has none. The IDs are not repeated,
// which keeps the record small (17 bytes an object); "" when there is no
// fingerprint at all.
func encodeFingerprints(r *Record) string { return encodeLines(r.Fingerprints, r.Inventory) }

// encodeLines writes values as encodeFingerprints does; Hashes use it too.
func encodeLines(values map[string]string, inventory []string) string {
	if len(values) == 0 || len(inventory) == 0 {
		return ""
	}
	var b strings.Builder
	for i, id := range inventory {
		if i > 0 {
			b.WriteByte('\n')
		}
		if fp := values[id]; fp != "" {
			b.WriteString(fp)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// decodeFingerprints pairs the lines of text with inventory. Lines that do
// not match the inventory one for one (an edited record) are dropped as a
// whole: unverified objects are re-applied, never trusted.
func decodeFingerprints(text string, inventory []string) map[string]string {
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	if len(lines) != len(inventory) {
		return nil
	}
	out := make(map[string]string, len(lines))
	for i, fp := range lines {
		if fp != "-" && fp != "" {
			out[inventory[i]] = fp
		}
	}
	return out
}

func encodeRecord(r *Record) (*corev1.ConfigMap, error) {
	meta, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       StateNamespace,
			Name:            RecordName(r.Fleet),
			Labels:          map[string]string{LabelFleet: r.Fleet, LabelCluster: r.Cluster, "app.kubernetes.io/managed-by": "convoy"},
			ResourceVersion: r.resourceVersion,
		},
		Data: map[string]string{"record": string(meta)},
	}
	if err := writeKey(cm, "inventory", strings.Join(r.Inventory, "\n")); err != nil {
		return nil, err
	}
	if fps := encodeFingerprints(r); fps != "" {
		if err := writeKey(cm, "fingerprints", fps); err != nil {
			return nil, err
		}
	}
	if hs := encodeLines(r.Hashes, r.Inventory); hs != "" {
		if err := writeKey(cm, "hashes", hs); err != nil {
			return nil, err
		}
	}
	return cm, nil
}

// WriteRecord creates or updates the record. An update carries the
// resourceVersion the record was read at, so a concurrent writer makes it
// fail with ErrConflict instead of being overwritten silently.
func WriteRecord(ctx context.Context, c client.Client, r *Record) error {
	if err := ensureNamespace(ctx, c, StateNamespace); err != nil {
		return err
	}
	cm, err := encodeRecord(r)
	if err != nil {
		return fmt.Errorf("encode record of cluster %s: %w", r.Cluster, err)
	}
	if r.resourceVersion == "" {
		err = c.Create(ctx, cm)
	} else {
		err = c.Update(ctx, cm)
	}
	switch {
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		return fmt.Errorf("write record %s/%s on cluster %s: %w", StateNamespace, cm.Name, r.Cluster, ErrConflict)
	case err != nil:
		return fmt.Errorf("write record %s/%s on cluster %s: %w", StateNamespace, cm.Name, r.Cluster, err)
	}
	r.resourceVersion = cm.ResourceVersion
	return nil
}

func ensureNamespace(ctx context.Context, c client.Client, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// ListRecords returns every convoy record in the cluster, of any fleet,
// sorted by fleet name.
func ListRecords(ctx context.Context, c client.Reader) ([]*Record, error) {
	var list corev1.ConfigMapList
	if err := c.List(ctx, &list, client.InNamespace(StateNamespace), client.HasLabels{LabelFleet}); err != nil {
		return nil, fmt.Errorf("list records in %s: %w", StateNamespace, err)
	}
	var out []*Record
	for i := range list.Items {
		r, err := decodeRecord(&list.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fleet < out[j].Fleet })
	return out, nil
}
