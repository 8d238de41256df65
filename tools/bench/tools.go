//go:build tools

// Package bench pins the baseline CLIs that `make bench` builds, so that
// `go mod tidy` keeps them in go.mod.
package bench

import (
	_ "github.com/open-policy-agent/conftest"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
