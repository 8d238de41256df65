package agent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const validConfig = `apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
repo:
  url: https://git.example.com/platform/fleet-config.git
  branch: main
  pollInterval: 30s
  auth:
    tokenFile: /var/run/secrets/convoy/git/token
kubeconfig:
  file: /etc/convoy/kubeconfig/config
github:
  api: https://github.example.com/api/v3/
  tokenFile: /var/run/secrets/convoy/github/token
  repo: acme/fleet-config
webhook:
  secretFile: /var/run/secrets/convoy/webhook/secret
listen:
  http: ":8080"
leaderElection:
  enabled: true
  namespace: convoy
log:
  format: text
`

func TestParseConfigValid(t *testing.T) {
	cfg, err := ParseConfig("config.yaml", []byte(validConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Repo.PollInterval.Duration != 30*time.Second || cfg.Debounce.Duration != DefaultDebounce ||
		cfg.LeaderElection.LeaseName != "convoy" || cfg.LeaderElection.Namespace != "convoy" || cfg.Log.Level != "info" {
		t.Errorf("config = %+v", cfg)
	}
}

func TestParseConfigProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown field", "apiVersion: convoy.dev/v1alpha1\nkind: AgentConfig\nrepo:\n  url: file:///r\n  branh: main\n",
			[]string{"c.yaml:5: repo.branh: unknown field, expected one of url, branch, pollInterval, timeout, auth, verify"}},
		{"malformed yaml", "repo: [\n", []string{"c.yaml:2: malformed YAML: did not find expected node content"}},
		{"empty", "", []string{"c.yaml:1: empty file, expected an AgentConfig document"}},
		{"wrong type", "apiVersion: convoy.dev/v1alpha1\nkind: AgentConfig\nrepo:\n  url: file:///r\n  pollInterval: soon\n",
			[]string{`c.yaml:5: repo.pollInterval: "soon" is not a duration, expected e.g. 90s, 2m or 1h30m`}},
		{"everything at once", `apiVersion: v1
kind: Agent
repo:
  url: https://user:secret@git.example.com/r.git
  auth:
    tokenFile: /t
    sshKeyFile: /k
  verify: {mode: all}
webhook: {}
listen: {http: "8080"}
leaderElection: {leaseDuration: 5s, renewDeadline: 10s}
log: {format: xml, level: loud}
`, []string{
			`c.yaml:1: apiVersion: expected convoy.dev/v1alpha1, got "v1"`,
			`c.yaml:2: kind: expected AgentConfig, got "Agent"`,
			`c.yaml:4: repo.url: must not carry credentials; use repo.auth files`,
			`c.yaml:5: repo.auth.knownHostsFile: required with sshKeyFile: an unchecked host would receive the fetch`,
			`c.yaml:5: repo.auth: give one of tokenFile, usernameFile+passwordFile, sshKeyFile`,
			`c.yaml:8: repo.verify.mode: expected off or head, got "all"`,
			`c.yaml:9: webhook: needs github.repo: the repository whose deliveries are acted on`,
			`c.yaml:9: webhook.secretFile: required when webhook is set: deliveries are accepted only with a valid X-Hub-Signature-256`,
			`c.yaml:10: listen.http: expected host:port or :port, got "8080"`,
			`c.yaml:11: leaderElection.renewDeadline: must be shorter than leaseDuration (5s)`,
			`c.yaml:12: log.format: expected json or text, got "xml"`,
			`c.yaml:12: log.level: expected debug, info, warn or error, got "loud"`,
		}},
		{"missing url", "apiVersion: convoy.dev/v1alpha1\nkind: AgentConfig\nrepo: {branch: main}\n",
			[]string{"c.yaml:3: repo.url: required: the config repository's URL (https://, ssh://, git@host:path, file://)"}},
		{"plain http without allowInsecure", "apiVersion: convoy.dev/v1alpha1\nkind: AgentConfig\nrepo:\n  url: http://git.example.com/r.git\ngithub:\n  api: http://ghe.example.com/api/v3/\n",
			[]string{
				`c.yaml:4: repo.url: "http://git.example.com/r.git" is not encrypted (http): use https:// or ssh:// (allowInsecure: true is for tests)`,
				`c.yaml:6: github.api: "http://ghe.example.com/api/v3/" is plain http: the token would cross the network in clear; use https (allowInsecure: true is for tests)`,
			}},
		{"git protocol", "apiVersion: convoy.dev/v1alpha1\nkind: AgentConfig\nrepo: {url: git://git.example.com/r.git}\n",
			[]string{`c.yaml:3: repo.url: "git://git.example.com/r.git" is not encrypted (git): use https:// or ssh:// (allowInsecure: true is for tests)`}},
		{"github app without its parts", "apiVersion: convoy.dev/v1alpha1\nkind: AgentConfig\nrepo: {url: file:///r}\ngithub:\n  tokenFile: /t\n  app: {id: 0}\n",
			[]string{
				"c.yaml:5: github.tokenFile: set with github.app: use one of them",
				"c.yaml:6: github.app.id: required: the GitHub App's ID",
				"c.yaml:6: github.app.installationID: required: the installation's ID on the config repository's owner",
				"c.yaml:6: github.app.privateKeyFile: required: the app's private key (PEM), mounted from a Secret",
			}},
		{"governance twice", "apiVersion: convoy.dev/v1alpha1\nkind: AgentConfig\nrepo: {url: file:///r}\ngovernance: {dir: /, repo: http://x/rules.git}\n",
			[]string{
				"c.yaml:4: governance: set dir or repo, not both",
				`c.yaml:4: governance.repo: "http://x/rules.git" is not encrypted (http): use https:// or ssh:// (allowInsecure: true is for tests)`,
			}},
		{"verify without keys", "apiVersion: convoy.dev/v1alpha1\nkind: AgentConfig\nrepo:\n  url: file:///r\n  verify:\n    mode: head\n",
			[]string{"c.yaml:5: repo.verify.keysFile: required with mode: head (armored OpenPGP public keys)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", []byte(tt.yaml))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if diff := cmp.Diff(tt.want, ce.Strings()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "secret@") {
				t.Errorf("error repeats the credentials of the URL: %v", err)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(validConfig))
	f.Add([]byte("repo: [\n"))
	f.Add([]byte("apiVersion: convoy.dev/v1alpha1\nkind: AgentConfig\nrepo: {url: x, pollInterval: -1s}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("c.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("ParseConfig = %v, %v: want exactly one", cfg, err)
		}
		var ce *ConfigError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("err = %T %v, want *ConfigError", err, err)
		}
		if err != nil {
			for _, p := range ce.Strings() {
				if !strings.HasPrefix(p, "c.yaml:") {
					t.Fatalf("problem %q does not name the file and line", p)
				}
			}
		}
	})
}
