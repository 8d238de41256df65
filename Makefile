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

# Test binaries (tools/go.mod pins kubernetes and etcd; kwok and Prometheus
# are pinned here). Prometheus is built without its service discoveries
# (-tags remove_all_sd): the tests give it static targets, and the cloud
# SDKs would triple its build time.
KWOK_VERSION       := v0.8.0
PROMETHEUS_VERSION := v0.316.0
TOOLS_HASH   := $(shell cat tools/go.mod tools/go.sum 2>/dev/null | sha256sum | cut -c1-12)
TOOLS_STAMP  := $(BIN)/.tools-$(TOOLS_HASH)-kwok-$(KWOK_VERSION)-prometheus-$(PROMETHEUS_VERSION)
KWOK_STAGES  := node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
                pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml

GO_TEST_FLAGS ?= -race -timeout 25m

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/convoy with version stamps, as the image does (static, stripped)
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(BIN)/convoy ./cmd/convoy

.PHONY: tools
tools: $(TOOLS_STAMP) ## Build the test binaries (kube-apiserver, etcd, kubectl, controller-manager, scheduler, kwok, prometheus) into bin/
$(TOOLS_STAMP):
	@mkdir -p $(BIN)
	@echo "building Kubernetes test binaries into bin/ (first time: ~10 min on 2 cores)"
	cd tools && go build -ldflags "-s -w" -o $(BIN)/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
		k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
	cd tools && go build -ldflags "-s -w" -o $(BIN)/etcd go.etcd.io/etcd/server/v3
	GOBIN=$(BIN) go install -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)
	GOBIN=$(BIN) go install -tags remove_all_sd -ldflags "-s -w" github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION)
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

.PHONY: fork-check
fork-check: ## Fail when internal/third_party/kustomize-api is not upstream kustomize/api with its patch
	internal/third_party/sync.sh -check

.PHONY: vet
vet: ## go vet
	go vet ./...

.PHONY: test
test: tidy-check fmt-check fork-check vet tools ## Tidy, fmt, fork and vet checks, test binaries, then every test with -race
	go test $(GO_TEST_FLAGS) ./...

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 20s)
	@for pkg in $$(go list ./...); do \
	  list=$$(go test -list '^Fuzz' $$pkg) || exit 1; \
	  for f in $$(echo "$$list" | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$pkg || exit 1; \
	  done; \
	done

# `make bench`: convoy against the tools its users would otherwise run. The
# baselines (the kustomize CLI, conftest, and fluxapply: fluxcd/pkg/ssa's
# ApplyAllStaged as kustomize-controller runs it) come from tools/bench/go.mod
# into bin/bench/, rebuilt when that module changes; kubectl and the control
# planes come from `make tools`. QUICK=1 runs a reduced set (CI smoke use).
BENCH_BIN   := $(BIN)/bench
BENCH_HASH  := $(shell cat tools/bench/go.mod tools/bench/go.sum 2>/dev/null | sha256sum | cut -c1-12)
BENCH_STAMP := $(BENCH_BIN)/.bench-tools-$(BENCH_HASH)
QUICK       ?=

.PHONY: bench
bench: tools bench-tools build ## Measure convoy vs kubectl, kustomize, Flux ssa, conftest into BENCHMARKS.md (QUICK=1: reduced set)
	go build -o $(BIN)/convoy-bench ./cmd/convoy-bench
	go build -o $(BENCH_BIN)/rusage ./cmd/convoy-bench/rusage
	$(BIN)/convoy-bench -bin $(BIN) $(if $(QUICK),-quick) -command "make bench$(if $(QUICK), QUICK=$(QUICK))"
	@echo "webhook load: 100 deliveries/s against the agent for $(if $(QUICK),3,30) s"
	CONVOY_LOAD_SECONDS=$(if $(QUICK),3,30) go test -count=1 -run '^TestWebhookLoad$$' -v ./internal/agent/ | grep -E 'load|ok|FAIL'

.PHONY: bench-tools
bench-tools: $(BENCH_STAMP) ## Build the benchmark baselines (kustomize, conftest, fluxapply) into bin/bench/
$(BENCH_STAMP): tools/bench/fluxapply/main.go
	@mkdir -p $(BENCH_BIN)
	@echo "building the benchmark baselines into bin/bench/ (first time: several minutes on 2 cores)"
	cd tools/bench && go build -ldflags "-s -w" -o $(BENCH_BIN)/ \
		./fluxapply sigs.k8s.io/kustomize/kustomize/v5 github.com/open-policy-agent/conftest
	@rm -f $(BENCH_BIN)/.bench-tools-* && touch $@

.PHONY: bench-go
bench-go: ## Go micro-benchmarks (render, policy)
	go test -run '^$$' -bench . -benchmem -count 5 ./internal/...

.PHONY: demo
demo: tools ## The main job: five local clusters, the agent, rollouts wave by wave, a hold that lifts by itself (FAST=1: short bakes)
	go run ./cmd/convoy-demo $(if $(FAST),--fast)

.PHONY: clean
clean: ## Remove bin/ (the test binaries are rebuilt by the next make tools)
	rm -rf $(BIN)
