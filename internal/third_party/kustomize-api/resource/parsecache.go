// Copyright 2026 The convoy Authors.
// SPDX-License-Identifier: Apache-2.0

package resource

import (
	"sync"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// ParseCache keeps what RNodesFromBytes parsed, by content, so that a file
// read again and again (a base shared by many overlays built in one
// process) is copied instead of parsed again. Copying a node tree costs a
// fraction of parsing its YAML. Every caller gets its own copy, so building
// one overlay cannot change what another gets. Content is kept from its
// second parse on: a file read once costs no copy. Errors are not kept. It
// is safe for concurrent use; the zero value is not, call NewParseCache.
//
// Not in upstream kustomize: added by convoy (internal/third_party).
type ParseCache struct {
	mu    sync.Mutex
	nodes map[string][]*yaml.RNode // content → nodes nobody else holds; nil: parsed once
}

// NewParseCache returns an empty cache.
func NewParseCache() *ParseCache {
	return &ParseCache{nodes: map[string][]*yaml.RNode{}}
}

// get returns a copy of the nodes kept for b, if any.
func (c *ParseCache) get(b []byte) ([]*yaml.RNode, bool) {
	c.mu.Lock()
	nodes := c.nodes[string(b)]
	c.mu.Unlock()
	switch {
	case nodes == nil:
		return nil, false
	case len(nodes) == 0:
		return nil, true // as parsed: no objects
	}
	// The kept nodes are never changed, so they are copied unlocked.
	return copyNodes(nodes), true
}

// put notes that nodes were parsed from b, and keeps a copy of them when b
// was parsed before.
func (c *ParseCache) put(b []byte, nodes []*yaml.RNode) {
	c.mu.Lock()
	_, again := c.nodes[string(b)]
	c.mu.Unlock()
	var kept []*yaml.RNode
	if again {
		kept = copyNodes(nodes) // not nil, even without objects
	}
	c.mu.Lock()
	if c.nodes[string(b)] == nil {
		c.nodes[string(b)] = kept
	}
	c.mu.Unlock()
}

func copyNodes(nodes []*yaml.RNode) []*yaml.RNode {
	out := make([]*yaml.RNode, len(nodes))
	for i, n := range nodes {
		out[i] = n.Copy()
	}
	return out
}
