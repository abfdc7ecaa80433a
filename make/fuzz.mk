# Fuzzing: every Fuzz target of the module, found by `go test -list`, for FUZZTIME each.
FUZZTIME ?= 60s

.PHONY: fuzz
fuzz: ## run every Fuzz target in the module for $(FUZZTIME) each (findings land in the package's testdata/fuzz)
	FUZZTIME=$(FUZZTIME) GO=$(GO) hack/fuzz.sh
