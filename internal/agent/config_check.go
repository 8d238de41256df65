package agent

// Validation of the agent config: every problem at once, each as
// file:line: field: problem.

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

type problem struct {
	line int
	text string
}

type validator struct {
	file     string
	root     *yaml.Node
	problems []problem
}

// addf records a problem at field (a dotted path), located at the field's
// line, or its nearest present parent's.
func (v *validator) addf(field, format string, args ...any) {
	line := v.line(field)
	v.problems = append(v.problems, problem{line, fmt.Sprintf("%s:%d: %s: %s", v.file, line, field, fmt.Sprintf(format, args...))})
}

func (v *validator) line(field string) int {
	n, line := v.root, v.root.Line
	for _, key := range strings.Split(field, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line, next = n.Content[i].Line, n.Content[i+1]
				break
			}
		}
		n = next
	}
	return line
}

func (v *validator) check(c *Config) {
	if c.APIVersion != ConfigAPIVersion {
		v.addf("apiVersion", "expected %s, got %q", ConfigAPIVersion, c.APIVersion)
	}
	if c.Kind != ConfigKind {
		v.addf("kind", "expected %s, got %q", ConfigKind, c.Kind)
	}
	if c.Repo.URL == "" {
		v.addf("repo.url", "required: the config repository's URL (https://, ssh://, git@host:path, file://)")
	} else if strings.Contains(c.Repo.URL, "@") && (strings.HasPrefix(c.Repo.URL, "http://") || strings.HasPrefix(c.Repo.URL, "https://")) {
		v.addf("repo.url", "must not carry credentials; use repo.auth files")
	}
	if c.Repo.Branch != "" && (strings.ContainsAny(c.Repo.Branch, " ~^:?*[\\") || strings.HasPrefix(c.Repo.Branch, "-")) {
		v.addf("repo.branch", "%q is not a valid branch name", c.Repo.Branch)
	}
	v.positive("repo.pollInterval", c.Repo.PollInterval, true)
	v.positive("repo.timeout", c.Repo.Timeout, true)
	a := c.Repo.Auth
	methods := 0
	if a.TokenFile != "" {
		methods++
	}
	if a.UsernameFile != "" || a.PasswordFile != "" {
		methods++
		if a.UsernameFile == "" || a.PasswordFile == "" {
			v.addf("repo.auth", "usernameFile and passwordFile go together")
		}
	}
	if a.SSHKeyFile != "" {
		methods++
		if a.KnownHostsFile == "" {
			v.addf("repo.auth.knownHostsFile", "required with sshKeyFile: an unchecked host would receive the fetch")
		}
	}
	if methods > 1 {
		v.addf("repo.auth", "give one of tokenFile, usernameFile+passwordFile, sshKeyFile")
	}
	switch c.Repo.Verify.Mode {
	case "", "off":
		if c.Repo.Verify.KeysFile != "" {
			v.addf("repo.verify.keysFile", "set, but mode is off: set mode: head to verify")
		}
	case "head":
		if c.Repo.Verify.KeysFile == "" {
			v.addf("repo.verify.keysFile", "required with mode: head (armored OpenPGP public keys)")
		}
	default:
		v.addf("repo.verify.mode", "expected off or head, got %q", c.Repo.Verify.Mode)
	}
	if c.GitHub != nil && c.GitHub.API != "" && !strings.HasPrefix(c.GitHub.API, "https://") && !strings.HasPrefix(c.GitHub.API, "http://") {
		v.addf("github.api", "expected an http(s) URL, got %q", c.GitHub.API)
	}
	if !c.AllowInsecure {
		if c.GitHub != nil && strings.HasPrefix(c.GitHub.API, "http://") {
			v.addf("github.api", "%q is plain http: the token would cross the network in clear; use https (allowInsecure: true is for tests)", c.GitHub.API)
		}
		for _, scheme := range []string{"http://", "git://"} {
			if strings.HasPrefix(c.Repo.URL, scheme) {
				v.addf("repo.url", "%q is not encrypted (%s): use https:// or ssh:// (allowInsecure: true is for tests)", c.Repo.URL, strings.TrimSuffix(scheme, "://"))
			}
		}
	}
	if c.Render.MaxObjects < 0 || c.Render.MaxBytes < 0 {
		v.addf("render", "maxObjects and maxBytes must be 0 (the default) or more")
	}
	v.positive("render.timeout", c.Render.Timeout, true)
	if c.GitHub != nil && c.GitHub.Repo != "" {
		if o, r, ok := strings.Cut(c.GitHub.Repo, "/"); !ok || o == "" || r == "" || strings.Contains(r, "/") {
			v.addf("github.repo", "expected OWNER/REPO, got %q", c.GitHub.Repo)
		}
	}
	if c.GitHub != nil && c.GitHub.App != nil {
		app := c.GitHub.App
		if app.ID <= 0 {
			v.addf("github.app.id", "required: the GitHub App's ID")
		}
		if app.InstallationID <= 0 {
			v.addf("github.app.installationID", "required: the installation's ID on the config repository's owner")
		}
		if app.PrivateKeyFile == "" {
			v.addf("github.app.privateKeyFile", "required: the app's private key (PEM), mounted from a Secret")
		}
		if c.GitHub.TokenFile != "" {
			v.addf("github.tokenFile", "set with github.app: use one of them")
		}
	}
	if c.GitHub != nil {
		v.positive("github.maxRateLimitWait", c.GitHub.MaxRateLimitWait, true)
	}
	if c.Governance.Dir != "" {
		if st, err := os.Stat(c.Governance.Dir); err != nil || !st.IsDir() {
			v.addf("governance.dir", "%q is not a directory", c.Governance.Dir)
		}
		if c.Governance.Repo != "" {
			v.addf("governance", "set dir or repo, not both")
		}
	}
	if c.Governance.Ref != "" && c.Governance.Repo == "" {
		v.addf("governance.ref", "set without governance.repo")
	}
	if !c.AllowInsecure {
		for _, scheme := range []string{"http://", "git://"} {
			if strings.HasPrefix(c.Governance.Repo, scheme) {
				v.addf("governance.repo", "%q is not encrypted (%s): use https:// or ssh:// (allowInsecure: true is for tests)", c.Governance.Repo, strings.TrimSuffix(scheme, "://"))
			}
		}
	}
	if c.MaxCommits < 0 {
		v.addf("maxCommits", "must be 0 (the default, %d) or more", 100)
	}
	if c.Webhook != nil && (c.GitHub == nil || c.GitHub.Repo == "") {
		v.addf("webhook", "needs github.repo: the repository whose deliveries are acted on")
	}
	if c.Webhook != nil && c.Webhook.SecretFile == "" {
		v.addf("webhook.secretFile", "required when webhook is set: deliveries are accepted only with a valid X-Hub-Signature-256")
	}
	if c.Listen.HTTP != "" {
		if _, port, err := net.SplitHostPort(c.Listen.HTTP); err != nil {
			v.addf("listen.http", "expected host:port or :port, got %q", c.Listen.HTTP)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.addf("listen.http", "port %q: expected 0-65535", port)
		}
	}
	le := c.LeaderElection
	v.positive("leaderElection.leaseDuration", le.LeaseDuration, true)
	v.positive("leaderElection.renewDeadline", le.RenewDeadline, true)
	v.positive("leaderElection.retryPeriod", le.RetryPeriod, true)
	if le.LeaseDuration.Duration > 0 && le.RenewDeadline.Duration >= le.LeaseDuration.Duration {
		v.addf("leaderElection.renewDeadline", "must be shorter than leaseDuration (%s)", le.LeaseDuration.Duration)
	}
	if le.Context != "" && le.Kubeconfig == "" {
		v.addf("leaderElection.context", "set without leaderElection.kubeconfig")
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		v.addf("log.format", "expected json or text, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		v.addf("log.level", "expected debug, info, warn or error, got %q", c.Log.Level)
	}
	v.positive("debounce", c.Debounce, true)
	v.positive("holdRecheck", c.HoldRecheck, true)
}

func (v *validator) positive(field string, d Duration, zeroOK bool) {
	if d.Duration < 0 || (!zeroOK && d.Duration == 0) {
		v.addf(field, "must be positive, got %s", d.Duration)
	}
}
