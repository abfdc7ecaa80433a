# plexus-sriov: focused build, test and benchmark targets.

.PHONY: build-sriov
build-sriov: ## build plexus-sriov statically into bin/ (it starts once per CNI call)
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/plexus-sriov

.PHONY: test-sriov
test-sriov: test-bins ## unit tests of cni/sriov and its integration tests (root: real netns, emulated VFs, plexus-ipam on envtest)
	$(GO) test ./cni/sriov/... ./deviceplugin/sysfs/... ./test/integration/sriov/...

.PHONY: bench-sriov
bench-sriov: cni-plugins ## ADD/DEL latency p50/p99 of plexus-sriov next to macvlan's (root)
	$(GO) test -run '^$$' -bench . -benchtime 1x ./test/bench/sriov/...
