# Plexus: one Go module, one Makefile. `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

PLEXUS_CACHE ?= $(HOME)/.cache/plexus
export PLEXUS_CACHE
export KUBEBUILDER_ASSETS ?= $(PLEXUS_CACHE)/bin
export GONOSUMDB := github.com/k8snetworkplumbingwg
export PATH := $(PLEXUS_CACHE)/bin:$(shell go env GOPATH)/bin:$(PATH)

GO ?= go
STATICCHECK_VERSION ?= v0.8.2

# Component-specific targets live in make/<area>.mk.
-include make/*.mk

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## install the Debian packages the tests and the demo need (apt-get, once)
	hack/deps.sh

.PHONY: build
build: ## build every binary into bin/ (static: the CNI plugins start once per call, the images have no libc)
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

.PHONY: test-bins
test-bins: ## build kube-apiserver, kube-scheduler, kube-controller-manager, kubelet, kubectl and etcd into $(PLEXUS_CACHE)/bin
	hack/test-bins.sh

.PHONY: cni-plugins
cni-plugins: ## build the CNI reference plugins (bridge, macvlan, host-local, static, loopback) into $(PLEXUS_CACHE)/cni/bin
	hack/cni-plugins.sh

.PHONY: test
test: deps test-bins cni-plugins ## unit, integration and e2e tests against real control planes, kubelets and netns (needs root)
	$(GO) test $$($(GO) list ./... | grep -v '/test/e2e$$')
	PLEXUS_E2E=1 $(GO) test -count=1 -v -timeout 30m ./test/e2e/

.PHONY: bench
bench: deps test-bins cni-plugins whereabouts ## run the benchmarks under test/bench and print their figures (Whereabouts' side alone takes minutes)
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 45m -p 1 ./test/bench/...

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: demo
demo: deps test-bins ## run the suite on a local cluster (Ctrl-C stops it; DEMO_EXIT=1 tears down and exits)
	$(GO) run ./cmd/plexus-sandbox demo
