package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/convoy-gitops/convoy/internal/change"
	"github.com/convoy-gitops/convoy/internal/fleet"
)

// Input is the policy input: one document per cluster per
// change. Its JSON field names are a contract with every policy.
type Input struct {
	Fleet   string           `json:"fleet"`
	Cluster Cluster          `json:"cluster"`
	Change  *change.Change   `json:"change"`
	Now     Now              `json:"now"`
	Windows []Window         `json:"windows"` // every window of the fleet, active or not
	Objects []map[string]any `json:"objects"` // every rendered object for the cluster
	Diff    *Diff            `json:"diff"`    // null where live state is not known
}

// Cluster is the cluster being changed.
type Cluster struct {
	Name        string            `json:"name"`
	Environment string            `json:"environment"`
	Region      string            `json:"region"`
	Wave        string            `json:"wave"`
	Capacity    map[string]string `json:"capacity"` // resource → Kubernetes quantity
	Labels      map[string]string `json:"labels"`
}

// Now is the evaluation time in the fleet's time zone.
type Now struct {
	Time     string `json:"time"`    // RFC 3339 with the zone's offset
	Weekday  int    `json:"weekday"` // 0 Sunday … 6 Saturday
	Hour     int    `json:"hour"`
	Minute   int    `json:"minute"`
	Timezone string `json:"timezone"` // IANA name
}

// Window is a fleet window and whether it is open now. Until is the end of
// an active window (RFC 3339) and the empty string when the window is not
// active, so that every window has the same fields.
type Window struct {
	Name            string   `json:"name"`
	Kind            string   `json:"kind"`
	Active          bool     `json:"active"`
	Until           string   `json:"until"`
	Environments    []string `json:"environments"`    // empty: every environment
	AllowCategories []string `json:"allowCategories"` // change categories the window lets through
}

// Diff is what applying the change would do to the cluster.
type Diff struct {
	Create    []string `json:"create"` // object IDs, e.g. "apps/v1/Deployment/ns/name"
	Update    []string `json:"update"`
	Delete    []string `json:"delete"`
	Unchanged int      `json:"unchanged"`
}

// BuildInput builds the input for the change ch to cluster c of fleet f, with
// the cluster's rendered objects, the diff against live state (nil when not
// known) and the current time.
func BuildInput(f *fleet.Fleet, c *fleet.Cluster, ch *change.Change, objects []*unstructured.Unstructured, diff *Diff, now time.Time) (*Input, error) {
	if f == nil || c == nil || ch == nil {
		return nil, errors.New("policy input: fleet, cluster and change are required")
	}
	loc := f.Location
	if loc == nil {
		loc = time.UTC
	}
	now = now.In(loc)
	in := &Input{
		Fleet: f.Name,
		Cluster: Cluster{
			Name:        c.Name,
			Environment: c.Environment,
			Region:      c.Region,
			Wave:        c.Wave,
			Capacity:    map[string]string{},
			Labels:      map[string]string{},
		},
		Change: normalize(ch),
		Now: Now{
			Time:     now.Format(time.RFC3339),
			Weekday:  int(now.Weekday()),
			Hour:     now.Hour(),
			Minute:   now.Minute(),
			Timezone: loc.String(),
		},
		Windows: []Window{},
		Objects: make([]map[string]any, 0, len(objects)),
		Diff:    diff,
	}
	for name, q := range c.Capacity {
		in.Cluster.Capacity[name] = q.String()
	}
	for k, v := range c.Labels {
		in.Cluster.Labels[k] = v
	}
	for _, w := range f.Windows {
		active, until, err := WindowState(w, now)
		if err != nil {
			return nil, err
		}
		win := Window{
			Name:            w.Name,
			Kind:            w.Kind,
			Active:          active,
			Environments:    nonNil(w.Environments),
			AllowCategories: nonNil(w.AllowCategories),
		}
		if active {
			win.Until = until.In(loc).Format(time.RFC3339)
		}
		in.Windows = append(in.Windows, win)
	}
	for _, o := range objects {
		if o != nil {
			in.Objects = append(in.Objects, o.Object)
		}
	}
	if in.Diff != nil {
		d := *in.Diff
		d.Create, d.Update, d.Delete = nonNil(d.Create), nonNil(d.Update), nonNil(d.Delete)
		in.Diff = &d
	}
	return in, nil
}

// maxWindowSteps bounds the schedule steps looked at for one window, for
// schedules far more frequent than their duration.
const maxWindowSteps = 1_000_000

// WindowState reports whether window w is open at now, and until when: the
// window is open when its most recent scheduled start (in now's zone, which
// should be the fleet's) is at or before now and less than w.Duration ago.
// Durations are elapsed time, so a window across a daylight-saving change
// lasts as long as on any other day.
func WindowState(w fleet.Window, now time.Time) (active bool, until time.Time, err error) {
	sched := w.Cron
	if sched == nil {
		sched, err = cron.ParseStandard(w.Schedule)
		if err != nil {
			return false, time.Time{}, fmt.Errorf("window %s: schedule %q: %w", w.Name, w.Schedule, err)
		}
	}
	if w.Duration <= 0 {
		return false, time.Time{}, nil
	}
	// cron has no "previous": step from the earliest start that can still
	// be open and keep the last one not after now.
	var last time.Time
	t := sched.Next(now.Add(-w.Duration - time.Second))
	for steps := 0; !t.IsZero() && !t.After(now); steps++ {
		if steps == maxWindowSteps {
			return false, time.Time{}, fmt.Errorf("window %s: schedule %q starts more than %d times in %s", w.Name, w.Schedule, maxWindowSteps, w.Duration)
		}
		last = t
		t = sched.Next(t)
	}
	if last.IsZero() {
		return false, time.Time{}, nil
	}
	end := last.Add(w.Duration)
	if now.Before(end) {
		return true, end, nil
	}
	return false, time.Time{}, nil
}

// normalize copies a change with empty lists instead of null ones, so that
// policies can count them.
func normalize(ch *change.Change) *change.Change {
	c := *ch
	c.Approvals = append([]change.Approval{}, ch.Approvals...)
	c.ChangesRequested = nonNil(ch.ChangesRequested)
	if ch.PullRequest != nil {
		pr := *ch.PullRequest
		pr.Labels = nonNil(pr.Labels)
		c.PullRequest = &pr
	}
	return &c
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Value converts the input to a Rego value once, for EvaluateValue. The
// objects are converted directly, not through JSON, which is slow for large
// renders. The value must not be modified: its parts are shared.
func (in *Input) Value() (ast.Value, error) {
	v, _, err := in.value(false)
	return v, err
}

// value is Value; with index set it also returns the quota index of the
// objects, read while converting them.
func (in *Input) value(index bool) (ast.Value, *objectIndex, error) {
	head := *in
	head.Objects = nil
	b, err := json.Marshal(head)
	if err != nil {
		return nil, nil, fmt.Errorf("policy input: %w", err)
	}
	var doc map[string]any
	if err := util.UnmarshalJSON(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("policy input: %w", err)
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("policy input: %w", err)
	}
	objects, idx, err := convertObjects(in.Objects, index)
	if err != nil {
		return nil, nil, fmt.Errorf("policy input objects: %w", err)
	}
	arr := ast.NewArray(objects...)
	if idx != nil {
		idx.objects = arr
	}
	v.(ast.Object).Insert(ast.StringTerm("objects"), ast.NewTerm(arr))
	return v, idx, nil
}

// InputError is an input document that is not valid JSON or lacks fields
// every policy relies on; Problems says which, one per entry.
type InputError struct {
	File     string
	Problems []string
}

func (e *InputError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.File + ": " + p
	}
	return strings.Join(lines, "\n")
}

// requiredFields are the fields of an input document ParseInput checks, with
// the JSON type each must have.
var requiredFields = []struct {
	path []string
	kind string
}{
	{[]string{"fleet"}, "string"},
	{[]string{"cluster"}, "object"},
	{[]string{"cluster", "name"}, "string"},
	{[]string{"cluster", "environment"}, "string"},
	{[]string{"change"}, "object"},
	{[]string{"change", "category"}, "string"},
	{[]string{"now"}, "object"},
	{[]string{"now", "time"}, "string"},
	{[]string{"now", "weekday"}, "number"},
	{[]string{"now", "hour"}, "number"},
	{[]string{"now", "minute"}, "number"},
	{[]string{"windows"}, "array"},
	{[]string{"objects"}, "array"},
}

// ParseInput reads an input document written by hand or by another tool
// (file names it in errors) and checks the fields the built-in policies rely
// on, because a missing one would silently let a change through.
func ParseInput(file string, data []byte) (ast.Value, error) {
	if v, ok := decodeInput(data); ok {
		return v, nil
	}
	return parseInput(file, data)
}

// parseInput is ParseInput the slow way, through encoding/json, which
// describes what is wrong with a document.
func parseInput(file string, data []byte) (ast.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &InputError{File: file, Problems: []string{jsonProblem(data, err)}}
	}
	if _, err := dec.Token(); err != io.EOF {
		line, col := position(data, dec.InputOffset()-1)
		return nil, &InputError{File: file, Problems: []string{fmt.Sprintf("line %d, column %d: invalid JSON: data after the document", line, col)}}
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, &InputError{File: file, Problems: []string{"invalid input: want a JSON object"}}
	}
	var problems []string
	for _, f := range requiredFields {
		v, found, parentOK := lookup(root, f.path)
		name := strings.Join(f.path, ".")
		switch {
		case !parentOK:
			// reported at the parent
		case !found:
			problems = append(problems, fmt.Sprintf("missing required field %s (%s)", name, f.kind))
		case jsonKind(v) != f.kind:
			problems = append(problems, fmt.Sprintf("field %s: want %s, got %s", name, f.kind, jsonKind(v)))
		}
	}
	if len(problems) > 0 {
		return nil, &InputError{File: file, Problems: problems}
	}
	v, err := convertDocument(root)
	if err != nil {
		return nil, &InputError{File: file, Problems: []string{err.Error()}}
	}
	return v, nil
}

// lookup finds path in doc. parentOK is false when a parent is missing or
// not an object, so that only the first problem of a path is reported.
func lookup(doc map[string]any, path []string) (v any, found, parentOK bool) {
	var cur any = doc
	for i, key := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false, i == len(path)-1
		}
	}
	return cur, true, true
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// jsonProblem describes a JSON decoding error with its line and column.
func jsonProblem(data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset-1) // Offset is after the bad byte
		return fmt.Sprintf("line %d, column %d: invalid JSON: %s", line, col, syn.Error())
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		return fmt.Sprintf("line %d, column %d: invalid JSON: %s", line, col, typ.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		line, col := position(data, int64(len(data)))
		return fmt.Sprintf("line %d, column %d: invalid JSON: unexpected end of input", line, col)
	}
	return "invalid JSON: " + err.Error()
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset < 0 {
		offset = 0
	}
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}
