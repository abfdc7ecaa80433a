# Images, the Helm chart and its CLI.
HELM_VERSION ?= v3.22.0
HELM4_VERSION ?= v4.3.1
IMAGE_REGISTRY ?= ghcr.io/plexus-project
IMAGE_TAG ?= dev

.PHONY: images
images: ## build every component's image (static binaries, empty base, go-containerregistry) into bin/plexus-images.tar
	$(GO) run ./cmd/plexus-images --registry $(IMAGE_REGISTRY) --tag $(IMAGE_TAG) --out bin/plexus-images.tar

.PHONY: helm
helm: ## install the helm CLIs into $(PLEXUS_CACHE)/bin: helm ($(HELM_VERSION)) and helm4 ($(HELM4_VERSION)); minutes the first time
	@test -x $(PLEXUS_CACHE)/bin/helm && $(PLEXUS_CACHE)/bin/helm version --short | grep -q '^$(HELM_VERSION)' || \
		GOBIN=$(PLEXUS_CACHE)/bin $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@test -x $(PLEXUS_CACHE)/bin/helm4 || { \
		GOBIN=$(PLEXUS_CACHE)/helm4 $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM4_VERSION) && \
		mv $(PLEXUS_CACHE)/helm4/helm $(PLEXUS_CACHE)/bin/helm4; }

.PHONY: test-chart
test-chart: helm test-bins ## helm lint/template of every mode, schema refusals, server dry-run of every rendered object, skaffold.yaml check
	$(GO) test ./test/integration/chart/...

# The chart's tests need the helm CLI.
test: helm
