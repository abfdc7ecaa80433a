# The node CNI meta-plugin: the plexus shim and the CNI server of plexus-daemon (docs/cni.md).
CNI_PKGS := ./cni/... ./cmd/plexus ./cmd/plexus-daemon

.PHONY: build-cni
build-cni: ## build the plexus shim and plexus-daemon statically into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/plexus ./cmd/plexus-daemon

.PHONY: test-cni
test-cni: test-bins cni-plugins ## unit tests of cni/ and the CNI integration tests (root: real netns, kube-apiserver, reference plugins)
	$(GO) test $(CNI_PKGS)
	$(GO) test -count=1 -timeout 30m ./test/integration/cni/
