# Local cluster of real kubelets (test/cluster): e2e suite and sandbox.

# The demo's nodes get the CNI reference plugins.
demo: cni-plugins

# The sandbox installs Plexus with its Helm chart (the helm CLI of the cache): the demo, the e2e
# suite and the benchmarks on it.
demo e2e bench: helm

.PHONY: e2e
e2e: deps test-bins cni-plugins ## run the e2e suite on local clusters of real kubelets (needs root)
	PLEXUS_E2E=1 $(GO) test -count=1 -v -timeout 30m ./test/e2e/...

.PHONY: sandbox-up
sandbox-up: deps test-bins cni-plugins ## bring a local cluster up and leave it running (kubeconfig printed)
	$(GO) run ./cmd/plexus-sandbox up

.PHONY: sandbox-down
sandbox-down: ## tear the local cluster down (works after a crash)
	$(GO) run ./cmd/plexus-sandbox down
