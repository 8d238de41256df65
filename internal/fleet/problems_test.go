package fleet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/fleet"
)

// Building blocks of small fleet.yaml documents; the comments give the lines
// each block takes when used in this order.
const (
	head = "apiVersion: convoy.dev/v1alpha1\nkind: Fleet\nmetadata: {name: demo}\nspec:\n" // 1–4
	// clusters takes lines 5–7.
	clusters = `  clusters:
  - {name: a, environment: prod, path: clusters/a, kubeconfig: {context: a}}
  - {name: b, environment: dev, path: clusters/b, kubeconfig: {context: b}}
`
	// rollout takes lines 8–10 after clusters.
	rollout = `  rollout:
    waves:
    - {name: one, clusters: [a, b]}
`
)

func doc(parts ...string) string { return head + strings.Join(parts, "") }

// problemLines returns err's problems formatted, or fails the test.
func problemLines(t *testing.T, err error) []string {
	t.Helper()
	var ve *fleet.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want a *fleet.ValidationError", err, err)
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.String())
	}
	if want := strings.Join(got, "\n"); ve.Error() != want {
		t.Errorf("Error() = %q, want one line per problem %q", ve.Error(), want)
	}
	return got
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "wrong apiVersion and kind",
			yaml: "apiVersion: v1\nkind: Deployment\nmetadata: {name: demo}\nspec:\n" + clusters + rollout,
			want: []string{
				`fleet.yaml:1: apiVersion: expected "convoy.dev/v1alpha1", got "v1"`,
				`fleet.yaml:2: kind: expected "Fleet", got "Deployment"`,
			},
		},
		{
			name: "missing apiVersion, kind, metadata",
			yaml: "spec:\n" + clusters + rollout,
			want: []string{
				`fleet.yaml:1: apiVersion: missing, expected "convoy.dev/v1alpha1"`,
				`fleet.yaml:1: kind: missing, expected "Fleet"`,
				`fleet.yaml:1: metadata.name: missing`,
			},
		},
		{
			name: "missing spec",
			yaml: "apiVersion: convoy.dev/v1alpha1\nkind: Fleet\nmetadata:\n  name: demo\n",
			want: []string{`fleet.yaml:1: spec: missing`},
		},
		{
			name: "fleet name not a DNS label",
			yaml: strings.Replace(doc(clusters, rollout), "{name: demo}", "{name: Demo_1}", 1),
			want: []string{`fleet.yaml:3: metadata.name: "Demo_1" is not a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`},
		},
		{
			name: "fleet name too long for a label value",
			yaml: strings.Replace(doc(clusters, rollout), "{name: demo}", "{name: "+strings.Repeat("a", 64)+"}", 1),
			want: []string{`fleet.yaml:3: metadata.name: "` + strings.Repeat("a", 64) + `" is not a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`},
		},
		{
			name: "unknown fields at every level",
			yaml: doc(clusters, rollout, "  clsuters: []\n  change: {source: github, github: {owner: o, repo: r, branch: main}}\n") + "status: {}\n",
			want: []string{
				`fleet.yaml:11: spec.clsuters: unknown field, expected one of timezone, clusters, rollout, windows, reconcile, change, policy`,
				`fleet.yaml:12: spec.change.github.branch: unknown field, expected one of owner, repo`,
				`fleet.yaml:13: status: unknown field, expected one of apiVersion, kind, metadata, spec`,
			},
		},
		{
			name: "duplicate key",
			yaml: doc(clusters, rollout, "  rollout: {}\n"),
			want: []string{`fleet.yaml:11: spec.rollout: duplicate key (first defined at line 8)`},
		},
		{
			name: "wrong node kinds",
			yaml: doc("  clusters: {a: 1}\n", "  rollout: {waves: [{name: [x], clusters: [a], maxParallel: two}], failFast: yes}\n"),
			want: []string{
				`fleet.yaml:5: spec.clusters: expected a sequence, got a mapping`,
				`fleet.yaml:5: spec.clusters: at least one cluster is required`,
				`fleet.yaml:6: spec.rollout.waves[0].name: expected a string, got a sequence`,
				`fleet.yaml:6: spec.rollout.waves[0].maxParallel: expected a whole number, got "two"`,
				`fleet.yaml:6: spec.rollout.failFast: expected true or false, got "yes"`,
				`fleet.yaml:6: spec.rollout.waves[0].clusters[0]: unknown cluster "a", expected one of spec.clusters[].name`,
			},
		},
		{
			name: "no clusters",
			yaml: doc("  clusters: []\n", "  rollout: {waves: [{name: one, clusters: [a]}]}\n"),
			want: []string{
				`fleet.yaml:5: spec.clusters: at least one cluster is required`,
				`fleet.yaml:6: spec.rollout.waves[0].clusters[0]: unknown cluster "a", expected one of spec.clusters[].name`,
			},
		},
		{
			name: "cluster problems are all reported",
			yaml: doc(`  clusters:
  - {environment: prod, path: /abs, kubeconfig: {context: a}}
  - {name: B_1, path: ../up, kubeconfig: {}}
  - {name: c, environment: e, path: c/../../x, kubeconfig: {context: c, secretRef: {name: s}}}
  - {name: d, environment: e, path: d}
  - {name: c, environment: e, path: "", kubeconfig: {inCluster: false}}
`, `  rollout:
    waves:
    - {name: one, clusters: [B_1, c, d]}
`),
			want: []string{
				`fleet.yaml:6: spec.clusters[0].name: missing`,
				`fleet.yaml:6: spec.clusters[0].path: "/abs" is absolute, expected a directory relative to the repository root`,
				`fleet.yaml:7: spec.clusters[1].environment: missing`,
				`fleet.yaml:7: spec.clusters[1].name: "B_1" is not a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`,
				`fleet.yaml:7: spec.clusters[1].path: "../up" leaves the repository`,
				`fleet.yaml:7: spec.clusters[1].kubeconfig: set exactly one of context, secretRef or inCluster`,
				`fleet.yaml:8: spec.clusters[2].path: "c/../../x" leaves the repository`,
				`fleet.yaml:8: spec.clusters[2].kubeconfig.secretRef.namespace: missing`,
				`fleet.yaml:8: spec.clusters[2].kubeconfig.secretRef.key: missing`,
				`fleet.yaml:8: spec.clusters[2].kubeconfig: set exactly one of context, secretRef or inCluster, got context and secretRef`,
				`fleet.yaml:9: spec.clusters[3].kubeconfig: missing, set exactly one of context, secretRef or inCluster`,
				`fleet.yaml:10: spec.clusters[4].path: missing`,
				`fleet.yaml:10: spec.clusters[4].kubeconfig: set exactly one of context, secretRef or inCluster`,
				`fleet.yaml:10: spec.clusters[4].name: duplicate cluster name "c" (first defined at line 8)`,
			},
		},
		{
			name: "capacity and labels",
			yaml: doc(`  clusters:
  - name: a
    environment: prod
    path: clusters/a
    kubeconfig: {context: a}
    capacity:
      cpu: lots
      memory: -1Gi
      Bad Name: "1"
      nvidia.com/gpu: 2
    labels:
      tier: canary
      -bad: x
      team: "no spaces"
`, "  rollout: {waves: [{name: one, clusters: [a]}]}\n"),
			want: []string{
				`fleet.yaml:11: spec.clusters[0].capacity.cpu: "lots" is not a quantity, expected e.g. 100, 500m or 200Gi`,
				`fleet.yaml:12: spec.clusters[0].capacity.memory: "-1Gi" is negative`,
				`fleet.yaml:13: spec.clusters[0].capacity["Bad Name"]: "Bad Name" is not a resource name: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
				`fleet.yaml:17: spec.clusters[0].labels.-bad: "-bad" is not a label key: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
				`fleet.yaml:18: spec.clusters[0].labels.team: "no spaces" is not a label value: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
			},
		},
		{
			name: "no rollout",
			yaml: doc(clusters),
			want: []string{`fleet.yaml:4: spec.rollout.waves: at least one wave is required`},
		},
		{
			name: "empty waves",
			yaml: doc(clusters, "  rollout:\n    waves: []\n"),
			want: []string{`fleet.yaml:9: spec.rollout.waves: at least one wave is required`},
		},
		{
			name: "wave problems",
			yaml: doc(clusters, `  rollout:
    waves:
    - {clusters: [a]}
    - {name: two, clusters: []}
    - {name: two, clusters: [a, x], maxParallel: -1, bake: 2x}
    healthTimeout: 0s
`),
			want: []string{
				`fleet.yaml:7: spec.clusters[1]: cluster "b" is in no wave of spec.rollout.waves`,
				`fleet.yaml:10: spec.rollout.waves[0].name: missing`,
				`fleet.yaml:11: spec.rollout.waves[1].clusters: a wave needs at least one cluster`,
				`fleet.yaml:12: spec.rollout.waves[2].bake: "2x" is not a duration, expected e.g. 90s, 2m or 1h30m`,
				`fleet.yaml:12: spec.rollout.waves[2].name: duplicate wave name "two" (first defined at line 11)`,
				`fleet.yaml:12: spec.rollout.waves[2].maxParallel: must be 0 (all clusters of the wave at once) or more, got -1`,
				`fleet.yaml:12: spec.rollout.waves[2].clusters[0]: cluster "a" is already in wave spec.rollout.waves[0] (line 10)`,
				`fleet.yaml:12: spec.rollout.waves[2].clusters[1]: unknown cluster "x", expected one of spec.clusters[].name`,
				`fleet.yaml:13: spec.rollout.healthTimeout: must be greater than 0`,
			},
		},
		{
			name: "cluster in two waves",
			yaml: doc(clusters, `  rollout:
    waves:
    - {name: one, clusters: [a]}
    - name: two
      clusters:
      - b
      - a
    healthTimeout: -5m
`),
			want: []string{
				`fleet.yaml:14: spec.rollout.waves[1].clusters[1]: cluster "a" is already in wave "one" (line 10)`,
				`fleet.yaml:15: spec.rollout.healthTimeout: "-5m" is negative`,
			},
		},
		{
			name: "time zone",
			yaml: doc(clusters, rollout, "  timezone: Mars/Olympus_Mons\n"),
			want: []string{`fleet.yaml:11: spec.timezone: unknown time zone "Mars/Olympus_Mons", expected an IANA name such as Europe/Berlin or UTC`},
		},
		{
			name: "time zone of the machine",
			yaml: doc(clusters, rollout, "  timezone: Local\n"),
			want: []string{`fleet.yaml:11: spec.timezone: unknown time zone "Local", expected an IANA name such as Europe/Berlin or UTC`},
		},
		{
			name: "windows",
			yaml: doc(clusters, rollout, `  windows:
  - {name: w1, kind: allow, schedule: "0 9 * * 1-5", duration: 9h, environments: [prod, staging], allowCategories: [emergency, urgent]}
  - {name: w1, schedule: "61 9 * * *", duration: 0s}
  - {name: w3, kind: deny, schedule: "0 0 30 2 *", duration: soon}
  - {name: w4, kind: deny, schedule: "@every 1h", duration: 10m}
  - {name: w5, kind: deny, schedule: "CRON_TZ=UTC 0 9 * * *"}
`),
			want: []string{
				`fleet.yaml:12: spec.windows[0].kind: "allow" is not a window kind, expected "deny"`,
				`fleet.yaml:12: spec.windows[0].environments[1]: no cluster has environment "staging" (environments: dev, prod)`,
				`fleet.yaml:12: spec.windows[0].allowCategories[1]: "urgent" is not a change category, expected one of emergency, standard, normal, major`,
				`fleet.yaml:13: spec.windows[1].name: duplicate window name "w1" (first defined at line 12)`,
				`fleet.yaml:13: spec.windows[1].kind: missing, expected "deny"`,
				`fleet.yaml:13: spec.windows[1].schedule: "61 9 * * *" is not a cron schedule: end of range (61) above maximum (59): 61`,
				`fleet.yaml:13: spec.windows[1].duration: must be greater than 0`,
				`fleet.yaml:14: spec.windows[2].duration: "soon" is not a duration, expected e.g. 90s, 2m or 1h30m`,
				`fleet.yaml:14: spec.windows[2].schedule: "0 0 30 2 *" is not a cron schedule: it never fires`,
				`fleet.yaml:15: spec.windows[3].schedule: "@every 1h" has no fixed start times, expected a cron expression such as "0 9 * * 1-5" or @daily`,
				`fleet.yaml:16: spec.windows[4].schedule: "CRON_TZ=UTC 0 9 * * *" is not a cron schedule: set the time zone in spec.timezone, not in the schedule`,
				`fleet.yaml:16: spec.windows[4].duration: missing, expected a duration such as 9h`,
			},
		},
		{
			name: "reconcile schedule",
			yaml: doc(clusters, rollout, "  reconcile: {schedule: \"@every 10x\"}\n"),
			want: []string{`fleet.yaml:11: spec.reconcile.schedule: "@every 10x" is not a cron schedule: failed to parse duration @every 10x: time: unknown unit "x" in duration "10x"`},
		},
		{
			name: "change source unknown",
			yaml: doc(clusters, rollout, "  change: {source: gitlab}\n"),
			want: []string{`fleet.yaml:11: spec.change.source: "gitlab" is not a change source, expected "github" or "trailers"`},
		},
		{
			name: "github source without repository",
			yaml: doc(clusters, rollout, "  change: {source: github}\n"),
			want: []string{`fleet.yaml:11: spec.change.github: missing, expected {owner, repo} when source is "github"`},
		},
		{
			name: "github source without owner and repo",
			yaml: doc(clusters, rollout, "  change:\n    source: github\n    github: {owner: \"\"}\n"),
			want: []string{
				`fleet.yaml:13: spec.change.github.owner: missing`,
				`fleet.yaml:13: spec.change.github.repo: missing`,
			},
		},
		{
			name: "policy data",
			yaml: doc(clusters, rollout, "  policy:\n    data: [1]\n"),
			want: []string{`fleet.yaml:12: spec.policy.data: expected a mapping, got a sequence`},
		},
		{
			name: "policy data not JSON",
			yaml: doc(clusters, rollout, "  policy:\n    data: {limit: .inf, self: &s [*s]}\n"),
			want: []string{
				`fleet.yaml:12: spec.policy.data.limit: .inf is not a JSON number`,
				`fleet.yaml:12: spec.policy.data.self[0]: an alias refers to a sequence that contains it`,
			},
		},
		{
			name: "quoted odd keys stay on one line",
			yaml: doc(clusters, rollout, "  \"a\\nb\": 1\n"),
			want: []string{`fleet.yaml:11: spec["a\nb"]: unknown field, expected one of timezone, clusters, rollout, windows, reconcile, change, policy`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := fleet.Parse("fleet.yaml", []byte(tt.yaml), "")
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want problems", f)
			}
			if diff := cmp.Diff(tt.want, problemLines(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"empty", "", `fleet.yaml:1: empty file, expected a Fleet document`},
		{"comment only", "# nothing\n", `fleet.yaml:1: empty file, expected a Fleet document`},
		{"null", "\n~\n", `fleet.yaml:2: empty document, expected a Fleet document`},
		{"sequence", "- a\n", `fleet.yaml:1: expected a mapping with apiVersion, kind, metadata and spec, got a sequence`},
		{"two documents", doc(clusters, rollout) + "---\nkind: Fleet\n", `fleet.yaml:11: a second YAML document; fleet.yaml holds one Fleet document`},
		{"bad indentation of a key", "a:\n  b: 1\n c: 2\n", `fleet.yaml:3: malformed YAML: did not find expected key`},
		{"deeper key", "a:\n  b: 1\n  c: 2\n   d: 3\n", `fleet.yaml:4: malformed YAML: mapping values are not allowed in this context`},
		{"unclosed flow sequence", "a: [1, 2\nb: 3\n", `fleet.yaml:2: malformed YAML: did not find expected ',' or ']'`},
		{"key after sequence", "a:\n  - b\n  c: 1\n", `fleet.yaml:3: malformed YAML: did not find expected '-' indicator`},
		{"tab", "a: 1\n\tb: 2\n", `fleet.yaml:2: malformed YAML: found a tab character that violates indentation`},
		{"unterminated quote", "a: 'x\nb: 1\n", `fleet.yaml:3: malformed YAML: found unexpected end of stream`},
		{"unknown anchor", "a: 1\nb: [*y]\n", `fleet.yaml:2: malformed YAML: unknown anchor 'y' referenced`},
		{"control character", "a: 1\nb: \x01\n", `fleet.yaml:2: malformed YAML: control characters are not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fleet.Parse("fleet.yaml", []byte(tt.yaml), "")
			if diff := cmp.Diff([]string{tt.want}, problemLines(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
