# convoy — GitOps for fleets of Kubernetes clusters under change management.
# `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.DEFAULT_GOAL := help

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/convoy-gitops/convoy/internal/commands.version=$(VERSION) \
           -X github.com/convoy-gitops/convoy/internal/commands.commit=$(COMMIT)

BIN := $(CURDIR)/bin
export GOTOOLCHAIN := local

# Test binaries (tools/go.mod pins kubernetes and etcd; kwok is pinned here).
KWOK_VERSION := v0.8.0
TOOLS_HASH   := $(shell cat tools/go.mod tools/go.sum 2>/dev/null | sha256sum | cut -c1-12)
TOOLS_STAMP  := $(BIN)/.tools-$(TOOLS_HASH)-kwok-$(KWOK_VERSION)
KWOK_STAGES  := node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
                pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml

GO_TEST_FLAGS ?= -race -timeout 25m

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/convoy with version stamps
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/convoy ./cmd/convoy

.PHONY: tools
tools: $(TOOLS_STAMP) ## Build the test binaries (kube-apiserver, etcd, kubectl, controller-manager, scheduler, kwok) into bin/
$(TOOLS_STAMP):
	@mkdir -p $(BIN)
	@echo "building Kubernetes test binaries into bin/ (first time: ~10 min on 2 cores)"
	cd tools && go build -ldflags "-s -w" -o $(BIN)/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
		k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
	cd tools && go build -ldflags "-s -w" -o $(BIN)/etcd go.etcd.io/etcd/server/v3
	GOBIN=$(BIN) go install -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)
	@dir=$$(go mod download -json sigs.k8s.io/kwok@$(KWOK_VERSION) | sed -n 's/.*"Dir": "\(.*\)",/\1/p'); \
	  rm -rf $(BIN)/kwok-stages && mkdir -p $(BIN)/kwok-stages && \
	  for s in $(KWOK_STAGES); do cp "$$dir/kustomize/stage/$$s" $(BIN)/kwok-stages/; done; \
	  chmod -R u+w $(BIN)/kwok-stages
	@rm -f $(BIN)/.tools-* && touch $@

.PHONY: tidy-check
tidy-check: ## Fail when go.mod/go.sum (main or tools module) are not tidy
	go mod tidy -diff
	cd tools && go mod tidy -diff

.PHONY: fmt-check
fmt-check: ## Fail when gofmt would change a file
	@out=$$(gofmt -l cmd internal policies tools 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## go vet
	go vet ./...

.PHONY: test
test: tidy-check fmt-check vet tools ## Tidy, fmt and vet checks, test binaries, then every test with -race
	go test $(GO_TEST_FLAGS) ./...

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 20s)
	@for pkg in $$(go list ./...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$pkg || exit 1; \
	  done; \
	done

.PHONY: bench
bench: ## Go benchmarks (render, policy)
	go test -run '^$$' -bench . -benchmem -count 5 ./internal/...

.PHONY: demo
demo: ## The main job: local fleet, agent, rollouts (arrives with the agent issue)
	@echo "make demo arrives with the agent (issue 7): it will start five local clusters and roll out fixtures/fleet." >&2
	@exit 1

.PHONY: clean
clean: ## Remove bin/ (the test binaries are rebuilt by the next make tools)
	rm -rf $(BIN)
