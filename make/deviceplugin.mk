# plexus-deviceplugin: focused test and benchmark targets.

.PHONY: test-deviceplugin
test-deviceplugin: ## unit + integration tests of the device plugin (test kubelet, envtest for capacity)
	$(GO) test ./deviceplugin/... ./test/integration/deviceplugin/...

.PHONY: bench-deviceplugin
bench-deviceplugin: ## device plugin benchmarks: discovery of 64x64 VFs, Allocate p99
	$(GO) test -run '^$$' -bench . -benchtime 1x ./test/bench/deviceplugin/...
