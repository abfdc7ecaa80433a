# plexus-extender: the scheduler extender (extender/, cmd/plexus-extender).

.PHONY: extender
extender: ## build bin/plexus-extender
	$(GO) build -o bin/plexus-extender ./cmd/plexus-extender

.PHONY: test-extender
test-extender: test-bins ## unit tests of extender/ and its acceptance tests with the real kube-apiserver and kube-scheduler
	$(GO) test ./extender/... ./test/integration/extender/...

.PHONY: bench-extender
bench-extender: test-bins ## the real kube-scheduler places 1,000 one-VF pods on 500 nodes with and without the extender: pods/s, ratio, filter p99
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./test/bench/extender

.PHONY: bench-scale
bench-scale: test-bins ## (minutes, not in CI) extender at 1,000/2,500/5,000 nodes, 10 networks, 20,000 pods: filter p99, bytes per node
	PLEXUS_BENCH_SCALE=1 $(GO) test -run '^$$' -bench Scale -benchtime 1x -timeout 60m ./test/bench/extender
