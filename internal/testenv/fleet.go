package testenv

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Approved ends a commit message with the trailers of a standard change
// approved by one reviewer, for fleets whose changes come from trailers.
const Approved = "\n\nChange-Category: standard\nApproved-by: Bob Reviewer <bob@example.com>\n"

// GitHubChange is Fleet.Change for changes read from the fake GitHub.
const GitHubChange = "    source: github\n    github: {owner: " + FakeGitHubOwner + ", repo: " + FakeGitHubRepo + "}\n"

// Fleet is the test fleet of the Shared planes: three clusters rolled out
// canary (staging) → primary (prod) → dr, whose objects, a namespace and
// a ConfigMap "settings" carrying a version, are healthy as soon as they
// exist, so API-only control planes suffice.
type Fleet struct {
	Name          string // the fleet's and its namespace's; use Name(t) on shared planes
	Timezone      string // "" is UTC
	Bake          string // the canary's bake; "" is none
	HealthTimeout string // "" is 30s
	Windows       string // YAML added under spec (a "  windows:" block); "" is none
	Change        string // YAML under spec.change; "" is commit trailers
	// Analysis is YAML added under spec.rollout (an "    analysis:" block);
	// CanaryGates are the analyses that gate the canary wave.
	Analysis    string
	CanaryGates []string
}

// Files are the repository's files with the settings at version.
func (f Fleet) Files(version int) map[string]string {
	tz, health, change, bake := f.Timezone, f.HealthTimeout, f.Change, ""
	if tz == "" {
		tz = "UTC"
	}
	if health == "" {
		health = "30s"
	}
	if change == "" {
		change = "    source: trailers\n"
	}
	if f.Bake != "" {
		bake = ", bake: " + f.Bake
	}
	if len(f.CanaryGates) > 0 {
		bake += ", analysis: [" + strings.Join(f.CanaryGates, ", ") + "]"
	}
	files := map[string]string{
		"fleet.yaml": `apiVersion: convoy.dev/v1alpha1
kind: Fleet
metadata:
  name: ` + f.Name + `
spec:
  timezone: ` + tz + `
  clusters:
  - {name: staging, environment: staging, region: north, path: clusters/staging, kubeconfig: {context: staging}}
  - {name: prod, environment: production, region: north, path: clusters/prod, kubeconfig: {context: prod}}
  - {name: dr, environment: production, region: south, path: clusters/dr, kubeconfig: {context: dr}}
  rollout:
    waves:
    - {name: canary, clusters: [staging]` + bake + `}
    - {name: primary, clusters: [prod]}
    - {name: dr, clusters: [dr]}
    healthTimeout: ` + health + `
    failFast: true
` + f.Analysis + f.Windows + `  change:
` + change,
		"base/kustomization.yaml": "resources: [namespace.yaml, settings.yaml]\n",
		"base/namespace.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + f.Name + "\n",
	}
	maps.Copy(files, f.Settings(version))
	for _, c := range []string{"staging", "prod", "dr"} {
		files["clusters/"+c+"/kustomization.yaml"] = "resources: [../../base]\n"
	}
	return files
}

// Settings is the one file that changes the settings' version: a commit
// of it is a new revision for every cluster.
func (f Fleet) Settings(version int) map[string]string {
	return map[string]string{"base/settings.yaml": fmt.Sprintf(
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: %s\ndata:\n  cluster: ${CLUSTER_NAME}\n  version: \"%d\"\n",
		f.Name, version)}
}

// AgentConfig is the agent config of a test (convoy run --config): the
// repository at RepoURL over the test git server's plain HTTP
// (allowInsecure), the clusters of Kubeconfig, an HTTP listener on a free
// port and a work directory of the test's own.
type AgentConfig struct {
	RepoURL    string
	Kubeconfig string
	Poll       time.Duration // repo.pollInterval; 0 is an hour
	Repo       string        // more fields of repo, in flow style: "timeout: 10s"
	Extra      string        // YAML appended as is: github, webhook, debounce…
}

// YAML is the config file's text for t.
func (c AgentConfig) YAML(t testing.TB) string {
	poll := c.Poll
	if poll == 0 {
		poll = time.Hour
	}
	repo := fmt.Sprintf("url: %q, pollInterval: %s", c.RepoURL, poll)
	if c.Repo != "" {
		repo += ", " + c.Repo
	}
	return fmt.Sprintf(`apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
allowInsecure: true # the test git server speaks plain http
repo: {%s}
kubeconfig: {file: %q}
listen: {http: "127.0.0.1:0"}
workDir: %q
%s`, repo, c.Kubeconfig, filepath.Join(t.TempDir(), "work"), c.Extra)
}

// File writes the config file for t and returns its path.
func (c AgentConfig) File(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(c.YAML(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
