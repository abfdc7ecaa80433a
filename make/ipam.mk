# plexus-ipam: code generation, Whereabouts for the benchmark.
CONTROLLER_GEN ?= $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.18.0

.PHONY: generate
generate: ## regenerate deepcopy code and CRD manifests (controller-gen)
	$(CONTROLLER_GEN) object paths=./ipam/api/...
	$(CONTROLLER_GEN) crd paths=./ipam/api/... output:crd:artifacts:config=charts/plexus/crds

.PHONY: whereabouts
whereabouts: ## build Whereabouts v0.9.4's CNI binary into $(PLEXUS_CACHE)/bin (benchmark only)
	hack/whereabouts.sh

.PHONY: build-ipam
build-ipam: ## build plexus-ipam statically (no dynamic loader: it starts once per CNI call), plexus-daemon (its node agent) and plexus-controller into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/plexus-ipam ./cmd/plexus-daemon ./cmd/plexus-controller
