package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

const modulePath = "github.com/convoy-gitops/convoy"

// ModuleRoot returns the directory of convoy's go.mod, found by walking up
// from the working directory, so tests in any package find bin/ and fixtures/.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", modulePath)
		}
		dir = parent
	}
}

// AssetsDir returns bin/ at the module root after checking that every binary
// the harness needs is there.
func AssetsDir(full bool) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, checkAssets(dir, full)
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "bin")
	return dir, checkAssets(dir, full)
}

func checkAssets(dir string, full bool) error {
	names := []string{"kube-apiserver", "etcd"}
	if full {
		names = append(names, "kube-controller-manager", "kube-scheduler", "kwok")
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("test binary %s missing in %s: run `make tools`", n, dir)
		}
	}
	if full {
		if _, err := os.Stat(filepath.Join(dir, "kwok-stages")); err != nil {
			return fmt.Errorf("kwok stage definitions missing in %s/kwok-stages: run `make tools`", dir)
		}
	}
	return nil
}
