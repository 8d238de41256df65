package agent

// Validation of the agent config: every problem at once, each as
// file:line: field: problem.

import (
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/convoy-gitops/convoy/internal/yamlfile"
)

// validator checks what a decoded config means; problems go to its Doc,
// located at the field they name.
type validator struct{ *yamlfile.Doc }

func (v *validator) check(c *Config) {
	if c.APIVersion != ConfigAPIVersion {
		v.Addf("apiVersion", "expected %s, got %q", ConfigAPIVersion, c.APIVersion)
	}
	if c.Kind != ConfigKind {
		v.Addf("kind", "expected %s, got %q", ConfigKind, c.Kind)
	}
	if c.Repo.URL == "" {
		v.Addf("repo.url", "required: the config repository's URL (https://, ssh://, git@host:path, file://)")
	} else if strings.Contains(c.Repo.URL, "@") && (strings.HasPrefix(c.Repo.URL, "http://") || strings.HasPrefix(c.Repo.URL, "https://")) {
		v.Addf("repo.url", "must not carry credentials; use repo.auth files")
	}
	if c.Repo.Branch != "" && (strings.ContainsAny(c.Repo.Branch, " ~^:?*[\\") || strings.HasPrefix(c.Repo.Branch, "-")) {
		v.Addf("repo.branch", "%q is not a valid branch name", c.Repo.Branch)
	}
	a := c.Repo.Auth
	methods := 0
	if a.TokenFile != "" {
		methods++
	}
	if a.UsernameFile != "" || a.PasswordFile != "" {
		methods++
		if a.UsernameFile == "" || a.PasswordFile == "" {
			v.Addf("repo.auth", "usernameFile and passwordFile go together")
		}
	}
	if a.SSHKeyFile != "" {
		methods++
		if a.KnownHostsFile == "" {
			v.Addf("repo.auth.knownHostsFile", "required with sshKeyFile: an unchecked host would receive the fetch")
		}
	}
	if methods > 1 {
		v.Addf("repo.auth", "give one of tokenFile, usernameFile+passwordFile, sshKeyFile")
	}
	switch c.Repo.Verify.Mode {
	case "", "off":
		if c.Repo.Verify.KeysFile != "" {
			v.Addf("repo.verify.keysFile", "set, but mode is off: set mode: head to verify")
		}
	case "head":
		if c.Repo.Verify.KeysFile == "" {
			v.Addf("repo.verify.keysFile", "required with mode: head (armored OpenPGP public keys)")
		}
	default:
		v.Addf("repo.verify.mode", "expected off or head, got %q", c.Repo.Verify.Mode)
	}
	if c.GitHub != nil && c.GitHub.API != "" && !strings.HasPrefix(c.GitHub.API, "https://") && !strings.HasPrefix(c.GitHub.API, "http://") {
		v.Addf("github.api", "expected an http(s) URL, got %q", c.GitHub.API)
	}
	if !c.AllowInsecure {
		if c.GitHub != nil && strings.HasPrefix(c.GitHub.API, "http://") {
			v.Addf("github.api", "%q is plain http: the token would cross the network in clear; use https (allowInsecure: true is for tests)", c.GitHub.API)
		}
		for _, scheme := range []string{"http://", "git://"} {
			if strings.HasPrefix(c.Repo.URL, scheme) {
				v.Addf("repo.url", "%q is not encrypted (%s): use https:// or ssh:// (allowInsecure: true is for tests)", c.Repo.URL, strings.TrimSuffix(scheme, "://"))
			}
		}
	}
	if c.Render.MaxObjects < 0 || c.Render.MaxBytes < 0 {
		v.Addf("render", "maxObjects and maxBytes must be 0 (the default) or more")
	}
	if c.GitHub != nil && c.GitHub.Repo != "" {
		if o, r, ok := strings.Cut(c.GitHub.Repo, "/"); !ok || o == "" || r == "" || strings.Contains(r, "/") {
			v.Addf("github.repo", "expected OWNER/REPO, got %q", c.GitHub.Repo)
		}
	}
	if c.GitHub != nil && c.GitHub.App != nil {
		app := c.GitHub.App
		if app.ID <= 0 {
			v.Addf("github.app.id", "required: the GitHub App's ID")
		}
		if app.InstallationID <= 0 {
			v.Addf("github.app.installationID", "required: the installation's ID on the config repository's owner")
		}
		if app.PrivateKeyFile == "" {
			v.Addf("github.app.privateKeyFile", "required: the app's private key (PEM), mounted from a Secret")
		}
		if c.GitHub.TokenFile != "" {
			v.Addf("github.tokenFile", "set with github.app: use one of them")
		}
	}
	if c.Governance.Dir != "" {
		if st, err := os.Stat(c.Governance.Dir); err != nil || !st.IsDir() {
			v.Addf("governance.dir", "%q is not a directory", c.Governance.Dir)
		}
		if c.Governance.Repo != "" {
			v.Addf("governance", "set dir or repo, not both")
		}
	}
	if c.Governance.Ref != "" && c.Governance.Repo == "" {
		v.Addf("governance.ref", "set without governance.repo")
	}
	if !c.AllowInsecure {
		for _, scheme := range []string{"http://", "git://"} {
			if strings.HasPrefix(c.Governance.Repo, scheme) {
				v.Addf("governance.repo", "%q is not encrypted (%s): use https:// or ssh:// (allowInsecure: true is for tests)", c.Governance.Repo, strings.TrimSuffix(scheme, "://"))
			}
		}
	}
	if c.MaxCommits < 0 {
		v.Addf("maxCommits", "must be 0 (the default, %d) or more", 100)
	}
	if c.Webhook != nil && (c.GitHub == nil || c.GitHub.Repo == "") {
		v.Addf("webhook", "needs github.repo: the repository whose deliveries are acted on")
	}
	if c.Webhook != nil && c.Webhook.SecretFile == "" {
		v.Addf("webhook.secretFile", "required when webhook is set: deliveries are accepted only with a valid X-Hub-Signature-256")
	}
	if c.Listen.HTTP != "" {
		if _, port, err := net.SplitHostPort(c.Listen.HTTP); err != nil {
			v.Addf("listen.http", "expected host:port or :port, got %q", c.Listen.HTTP)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.Addf("listen.http", "port %q: expected 0-65535", port)
		}
	}
	le := c.LeaderElection
	if le.LeaseDuration.Duration > 0 && le.RenewDeadline.Duration >= le.LeaseDuration.Duration {
		v.Addf("leaderElection.renewDeadline", "must be shorter than leaseDuration (%s)", le.LeaseDuration.Duration)
	}
	if le.Context != "" && le.Kubeconfig == "" {
		v.Addf("leaderElection.context", "set without leaderElection.kubeconfig")
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		v.Addf("log.format", "expected json or text, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		v.Addf("log.level", "expected debug, info, warn or error, got %q", c.Log.Level)
	}
}
