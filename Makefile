# loadpool — `make help` lists the targets.
GO       ?= go
# The demo (loadpool dev) and its simulators are linked only with -tags dev;
# tests, vet and lint see those files too. `make build` is the product.
export GOFLAGS = -tags=dev
RACE_PKGS = ./stepworker/... ./loaderworker ./coordinator/... ./osworker/... ./devlab ./e2e

.PHONY: help run deps test test-short bench build vet lint fmt

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

run: ## the demo: everything in one process with simulated computers (loadpool dev)
	$(GO) run -tags dev ./cmd/loadpool dev

deps: ## install what the tests need beyond Go (openssh-server for the real-sshd test)
	@bash .ci/deps

test: deps ## all tests (CI runs this): go vet, every package once, the concurrent ones again under -race
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	$(GO) test -count=1 -timeout 30m -race $(RACE_PKGS)

test-short: ## all tests once, without the -race pass
	$(GO) test -count=1 ./...

bench: ## benchmarks (figures for the notes)
	$(GO) test -run '^$$' -bench . -benchmem ./...

build: ## build bin/loadpool, the product (no demo, no simulators)
	GOFLAGS= $(GO) build -o bin/loadpool ./cmd/loadpool

vet: ## go vet
	$(GO) vet ./...

lint: ## staticcheck (fetched through the module proxy, pinned)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')
