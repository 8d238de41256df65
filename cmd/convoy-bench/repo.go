package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// fleetSpec is what a generated fleet.yaml says.
type fleetSpec struct {
	Name  string
	Waves [][]string // cluster names, wave by wave; each cluster's path is clusters/<name>
	// Env and Region per cluster; "bench" and "r1" when unset.
	Env, Region map[string]string
}

// fleetYAML renders spec as a fleet.yaml: no windows, a
// health timeout of 3 minutes, fail fast, no rollback, trailers as the
// change source (the benchmarks pass --change), capacity far above any
// workload's requests.
func fleetYAML(spec fleetSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: convoy.dev/v1alpha1\nkind: Fleet\nmetadata:\n  name: %s\nspec:\n  timezone: UTC\n  clusters:\n", spec.Name)
	for _, wave := range spec.Waves {
		for _, c := range wave {
			env, region := spec.Env[c], spec.Region[c]
			if env == "" {
				env = "bench"
			}
			if region == "" {
				region = "r1"
			}
			fmt.Fprintf(&b, "  - name: %s\n    environment: %s\n    region: %s\n    path: clusters/%s\n    kubeconfig: {context: %s}\n"+
				"    capacity: {cpu: \"100000\", memory: 100Ti}\n", c, env, region, c, c)
		}
	}
	b.WriteString("  rollout:\n    waves:\n")
	for i, wave := range spec.Waves {
		fmt.Fprintf(&b, "    - {name: wave-%d, clusters: [%s]}\n", i+1, strings.Join(wave, ", "))
	}
	b.WriteString("    healthTimeout: 3m\n    failFast: true\n    rollbackOnFailure: false\n")
	b.WriteString("  change:\n    source: trailers\n  policy:\n    data:\n      approvals: {emergency: 1, standard: 1, normal: 1, major: 2}\n")
	return b.String()
}

// changeJSON is an approved normal change with a rollback plan: every
// built-in policy allows it, so the benchmarks measure the rollout.
const changeJSON = `{
  "revision": "", "previous_revision": "", "category": "normal",
  "pull_request": {"number": 1, "title": "bench", "body": "## Rollback\nRevert the merge.\n",
    "author": "alice", "labels": [], "head_sha": "", "merged": true, "url": ""},
  "approvals": [{"user": "bob", "commit_id": "", "submitted_at": "2026-11-24T09:00:00Z", "permission": "write", "type": "User"}],
  "changes_requested": [],
  "commit": {"sha": "", "author": "alice", "message": "bench", "verified": true}
}
`

// configRepo is a generated config repository under git.
type configRepo struct {
	Dir string
}

// newConfigRepo writes fleet.yaml and, for each cluster, clusters/<name>
// holding objs (the same for every cluster), then commits.
func newConfigRepo(dir string, spec fleetSpec, objs []Object) (*configRepo, error) {
	r := &configRepo{Dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(fleetYAML(spec)), 0o644); err != nil {
		return nil, err
	}
	if err := r.setObjects(spec, objs); err != nil {
		return nil, err
	}
	if err := r.git("init", "-q", "-b", "main"); err != nil {
		return nil, err
	}
	return r, r.commit(commitMessage("generated workload"))
}

// setObjects writes objs as every cluster's kustomization.
func (r *configRepo) setObjects(spec fleetSpec, objs []Object) error {
	for _, wave := range spec.Waves {
		for _, c := range wave {
			if err := WriteKustomization(filepath.Join(r.Dir, "clusters", c), objs); err != nil {
				return err
			}
		}
	}
	return nil
}

// commitMessage is subject with what the built-in policies ask of a commit
// without a pull request when the change source is trailers: a rollback
// plan and an approval by someone other than the author ("bench"). The
// CLI scenarios pass --change instead; the agent reads these.
func commitMessage(subject string) string {
	return subject + "\n\n## Rollback\nRevert the commit.\n\nApproved-by: bob <bob@convoy.dev>\n"
}

func (r *configRepo) commit(msg string) error {
	if err := r.git("add", "-A"); err != nil {
		return err
	}
	return r.git("-c", "user.name=bench", "-c", "user.email=bench@convoy.dev", "commit", "-q", "-m", msg)
}

func (r *configRepo) git(args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), r.Dir, err, out)
	}
	return nil
}

// writeRenderRepo writes the render scenario's repository: one shared base
// of objs, two environments and four regions over it, and n clusters each
// combining an environment and a region (no git: convoy render reads the
// directory as it is).
func writeRenderRepo(dir string, n int, objs []Object) ([]string, error) {
	if err := WriteKustomization(filepath.Join(dir, "environments", "base"), objs); err != nil {
		return nil, err
	}
	envs := []string{"staging", "production"}
	for _, env := range envs {
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../base\n"+
			"labels:\n- pairs:\n    environment: %s\n  includeTemplates: true\n", env)
		if err := writeFile(filepath.Join(dir, "environments", env, "kustomization.yaml"), k); err != nil {
			return nil, err
		}
	}
	regions := []string{"north", "east", "south", "west"}
	for _, r := range regions {
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n- pairs:\n    region: %s\n"+
			"commonAnnotations:\n  bench.convoy.dev/region: %s\n", r, r)
		if err := writeFile(filepath.Join(dir, "regions", r, "kustomization.yaml"), k); err != nil {
			return nil, err
		}
	}
	spec := fleetSpec{Name: "render-bench", Env: map[string]string{}, Region: map[string]string{}}
	var clusters []string
	for i := range n {
		c := fmt.Sprintf("cluster-%02d", i+1)
		clusters = append(clusters, c)
		spec.Env[c], spec.Region[c] = envs[i%len(envs)], regions[i%len(regions)]
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../environments/%s\n"+
			"components:\n- ../../regions/%s\nlabels:\n- pairs:\n    cluster: %s\n", spec.Env[c], spec.Region[c], c)
		if err := writeFile(filepath.Join(dir, "clusters", c, "kustomization.yaml"), k); err != nil {
			return nil, err
		}
	}
	spec.Waves = [][]string{clusters}
	return clusters, writeFile(filepath.Join(dir, "fleet.yaml"), fleetYAML(spec))
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
