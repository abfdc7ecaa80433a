# plexus-webhook: the admission webhook (webhook/, cmd/plexus-webhook).

.PHONY: webhook
webhook: ## build bin/plexus-webhook
	$(GO) build -o bin/plexus-webhook ./cmd/plexus-webhook

.PHONY: test-webhook
test-webhook: test-bins ## unit tests of webhook/ and its integration tests against a real kube-apiserver
	$(GO) test ./webhook/... ./test/integration/webhook/...

.PHONY: bench-webhook
bench-webhook: test-bins ## load-drive the webhook: 2,000 AdmissionReviews at 500/s, 32 in flight; p50/p99/max, API requests per 1,000
	$(GO) test -run '^$$' -bench . -benchtime 1x ./test/bench/webhook/
