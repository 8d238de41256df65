// Package policy is convoy's policy gate: it compiles the
// built-in Rego policies and a repository's own, builds the input document of
// one change for one cluster, and evaluates it to allow, hold or deny.
//
// It fails closed: a policy that does not compile is an error of New, and an
// evaluation error, a timeout, an undefined rule or a malformed result is a
// deny whose message names the policy file and line where OPA gives them.
package policy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// BuiltinPrefix prefixes the file names of the built-in policies in messages,
// e.g. "builtin/quota.rego:12".
const BuiltinPrefix = "builtin/"

// DefaultTimeout bounds one evaluation when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Verdict is the outcome of a policy evaluation.
type Verdict string

// Verdicts, from the least to the most severe.
const (
	Allow Verdict = "allow"
	Hold  Verdict = "hold"
	Deny  Verdict = "deny"
)

// Message is one deny, hold or warn message of a policy.
type Message struct {
	Package  string `json:"package"`            // e.g. "convoy.quota"
	Msg      string `json:"msg"`                // what the policy says
	Location string `json:"location,omitempty"` // "file:line" of the rule or error, "file" when several rules share the name
	// Until, on a hold, is when the policy expects the hold to lift (an
	// object message's RFC 3339 "until"): the agent re-evaluates then.
	Until string `json:"until,omitempty"`
}

// Options configures an Engine.
type Options struct {
	// Dirs are folders of extra policies (a repository's policies/), read
	// recursively; _test.rego files are skipped.
	Dirs []string
	// Root, when set, is the repository the Dirs are in: their files are
	// named relative to it in messages ("policies/x.rego:3"), not by
	// where a snapshot of it happens to be.
	Root string
	// Data is exposed to Rego as data.convoy.config (fleet.yaml spec.policy.data).
	Data map[string]any
	// Timeout bounds one evaluation; DefaultTimeout when zero.
	Timeout time.Duration
}

// Decision is the deny a policy set that does not compile stands for (fail
// closed): one message per problem, located at its file and
// line.
func (e *CompileError) Decision() Decision {
	d := Decision{Verdict: Deny, Hold: []Message{}, Warn: []Message{}}
	for _, p := range e.Problems {
		m := Message{Package: "compile", Msg: "policies do not compile: " + p}
		if loc, _, ok := strings.Cut(p, ": "); ok && strings.Contains(loc, ".rego:") {
			m.Location = loc
		}
		d.Deny = append(d.Deny, m)
	}
	return d
}

// resultVar is the query's variable holding the values of every rule.
const resultVar = "convoy_rules"

// rules are the rules named deny, hold or warn of one package.
type rules struct {
	pkg       string   // "convoy.quota"
	kind      string   // "deny", "hold" or "warn"
	ref       string   // "data.convoy.quota.deny"
	locations []string // "file:line" of each rule
	position  int      // index of [value], or [] when undefined, in the query's result
}

func (r *rules) location() string {
	if len(r.locations) == 1 {
		return r.locations[0]
	}
	var files []string
	seen := map[string]bool{}
	for _, l := range r.locations {
		f := l[:strings.LastIndex(l, ":")]
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	return strings.Join(files, ", ")
}

// Engine evaluates compiled policies. It is safe for concurrent use.
type Engine struct {
	query    rego.PreparedEvalQuery
	rules    []*rules
	packages map[string]string // file → package, to name the package of an error
	timeout  time.Duration
}

// New compiles the built-in policies and those of opts.Dirs.
func New(opts Options) (*Engine, error) {
	return newEngine(opts, true)
}

// newEngine is New; goIndex false evaluates the quota policy's object index
// in Rego, as `opa test` does, to check the Go one against it.
func newEngine(opts Options, goIndex bool) (*Engine, error) {
	modules, err := loadModules(opts.Dirs, false, opts.Root)
	if err != nil {
		return nil, err
	}
	e := &Engine{packages: map[string]string{}, timeout: opts.Timeout}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}

	byRef := map[string]*rules{}
	var files []string
	for file := range modules {
		files = append(files, file)
	}
	sort.Strings(files)
	for _, file := range files {
		m := modules[file]
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		e.packages[file] = pkg
		if !m.Package.Path.HasPrefix(ast.MustParseRef("data.convoy")) || len(m.Package.Path) < 3 {
			continue
		}
		for _, rule := range m.Rules {
			head := rule.Head.Ref()
			name, ok := head[0].Value.(ast.Var)
			if !ok || (name != "deny" && name != "hold" && name != "warn") {
				continue
			}
			ref := m.Package.Path.Append(ast.StringTerm(string(name))).String()
			r := byRef[ref]
			if r == nil {
				r = &rules{pkg: pkg, kind: string(name), ref: ref}
				byRef[ref] = r
				e.rules = append(e.rules, r)
			}
			r.locations = append(r.locations, fmt.Sprintf("%s:%d", file, rule.Location.Row))
		}
	}
	sort.Slice(e.rules, func(i, j int) bool { return e.rules[i].ref < e.rules[j].ref })

	// One query of one expression, an array with an element per rule, each
	// defined even when its rule is not, so that one undefined rule does not
	// hide the others. The quota policy's object index is evaluated in Go
	// (quota_index.go); one expression keeps one cache of the rules' values
	// under that `with`.
	elems := make([]string, len(e.rules))
	for i, r := range e.rules {
		r.position = i
		elems[i] = fmt.Sprintf("[x | x := %s]", r.ref)
	}
	query := fmt.Sprintf("%s := [%s]", resultVar, strings.Join(elems, ", "))
	if goIndex {
		query += fmt.Sprintf(" with %s as %s", quotaIndexRef, quotaIndexBuiltin)
	}

	regoOpts := []func(*rego.Rego){
		rego.Query(query),
		rego.Store(configStore(opts.Data)),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Capabilities(capabilities()),
		quotaIndexFunction,
	}
	for _, file := range files {
		regoOpts = append(regoOpts, rego.ParsedModule(modules[file]))
	}
	e.query, err = rego.New(regoOpts...).PrepareForEval(context.Background())
	if err != nil {
		return nil, compileError(err)
	}
	return e, nil
}

// Evaluate evaluates every policy for in. It never fails: whatever goes
// wrong is a deny. It reads what the quota policy's object index needs
// while converting the objects, so that the index only groups them.
func (e *Engine) Evaluate(ctx context.Context, in *Input) Decision {
	v, idx, err := in.value(true)
	if err != nil {
		return decide(Decision{Deny: []Message{{Msg: fmt.Sprintf("policy input: %v", err)}}})
	}
	return e.EvaluateValue(context.WithValue(ctx, objectIndexKey{}, idx), v)
}

// EvaluateValue evaluates every policy for an input document already
// converted to a Rego value, which saves converting it again.
func (e *Engine) EvaluateValue(ctx context.Context, input ast.Value) Decision {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return decide(Decision{Deny: []Message{e.evalError(ctx, err)}})
	}
	if len(rs) != 1 {
		return decide(Decision{Deny: []Message{{Msg: fmt.Sprintf("policy query gave %d results, want 1", len(rs))}}})
	}
	values, ok := rs[0].Bindings[resultVar].([]any)
	if !ok || len(values) != len(e.rules) {
		return decide(Decision{Deny: []Message{{Msg: fmt.Sprintf("policy query gave %s, want %d values", describe(rs[0].Bindings[resultVar]), len(e.rules))}}})
	}
	var d Decision
	for _, r := range e.rules {
		var out *[]Message
		switch r.kind {
		case "deny":
			out = &d.Deny
		case "hold":
			out = &d.Hold
		default:
			out = &d.Warn
		}
		msgs, bad := collect(r, values[r.position])
		*out = append(*out, msgs...)
		d.Deny = append(d.Deny, bad...)
	}
	return decide(d)
}

// evalError turns an evaluation error into a deny message.
func (e *Engine) evalError(ctx context.Context, err error) Message {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Message{Msg: fmt.Sprintf("policy evaluation timed out after %s", e.timeout)}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return Message{Msg: "policy evaluation cancelled"}
	}
	var te *topdown.Error
	if errors.As(err, &te) {
		m := Message{Msg: fmt.Sprintf("policy evaluation failed: %s: %s", te.Code, te.Message)}
		if te.Location != nil {
			m.Location = fmt.Sprintf("%s:%d", te.Location.File, te.Location.Row)
			m.Package = e.packages[te.Location.File]
		}
		return m
	}
	return Message{Msg: fmt.Sprintf("policy evaluation failed: %v", err)}
}

// collect reads the value of a rule: [] when undefined, else [set of
// messages]. Malformed results are returned as deny messages.
func collect(r *rules, binding any) (msgs, bad []Message) {
	wrapped, ok := binding.([]any)
	if !ok || len(wrapped) == 0 {
		return nil, []Message{{Package: r.pkg, Location: r.location(),
			Msg: fmt.Sprintf("%s is undefined; want a set of messages", r.ref)}}
	}
	items, ok := wrapped[0].([]any)
	if !ok {
		return nil, []Message{{Package: r.pkg, Location: r.location(),
			Msg: fmt.Sprintf("%s is %s; want a set of strings or of objects with a string \"msg\"", r.ref, describe(wrapped[0]))}}
	}
	for _, item := range items {
		switch v := item.(type) {
		case string:
			msgs = append(msgs, Message{Package: r.pkg, Msg: v, Location: r.location()})
			continue
		case map[string]any:
			if s, ok := v["msg"].(string); ok {
				m := Message{Package: r.pkg, Msg: s, Location: r.location()}
				if u, ok := v["until"].(string); ok {
					if _, err := time.Parse(time.RFC3339, u); err == nil {
						m.Until = u
					}
				}
				msgs = append(msgs, m)
				continue
			}
		}
		bad = append(bad, Message{Package: r.pkg, Location: r.location(),
			Msg: fmt.Sprintf("%s holds %s; want strings or objects with a string \"msg\"", r.ref, describe(item))})
	}
	return msgs, bad
}

// describe names a Rego result's type and value for a message.
func describe(v any) string {
	t := "a value"
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		t = "a boolean"
	case string:
		t = "a string"
	case []any:
		t = "a collection"
	case map[string]any:
		t = "an object"
	default:
		t = "a number"
	}
	s := fmt.Sprint(v)
	if av, err := ast.InterfaceToValue(v); err == nil {
		s = av.String()
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return t + " " + s
}

// decide sorts the messages and sets the verdict.
func decide(d Decision) Decision {
	for _, ms := range [][]Message{d.Deny, d.Hold, d.Warn} {
		sort.SliceStable(ms, func(i, j int) bool {
			if ms[i].Package != ms[j].Package {
				return ms[i].Package < ms[j].Package
			}
			return ms[i].Msg < ms[j].Msg
		})
	}
	if d.Deny == nil {
		d.Deny = []Message{}
	}
	if d.Hold == nil {
		d.Hold = []Message{}
	}
	if d.Warn == nil {
		d.Warn = []Message{}
	}
	switch {
	case len(d.Deny) > 0:
		d.Verdict = Deny
	case len(d.Hold) > 0:
		d.Verdict = Hold
	default:
		d.Verdict = Allow
	}
	return d
}
