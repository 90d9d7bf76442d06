# loadpool — `make help` lists the targets.
GO       ?= go
# The demo (loadpool dev) and its simulators are linked only with -tags dev;
# tests, vet and lint see those files too. `make build` is the product.
export GOFLAGS = -tags=dev
STATICCHECK = $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help run run-real guest-image deps test test-short bench build vet lint fmt fmt-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

run: ## the demo: everything in one process with simulated computers (loadpool dev)
	$(GO) run -tags dev ./cmd/loadpool dev

run-real: ## real guests: two Debian VMs (QEMU via libvirtd), a Linux job on each over SSH and the guest agent (root)
	$(GO) run -tags dev ./cmd/loadpool real

guest-image: ## build (once; cached by the script's hash) the Debian 12 guest image and its variants
	bash devlab/guest/build.sh

deps: ## install what the tests need beyond Go (openssh-server, QEMU, libvirt, mmdebstrap) and build the guest image
	@bash .ci/deps

test: deps fmt-check vet lint ## all tests (CI runs this): gofmt, go vet and staticcheck gates, then every package under -race
	$(GO) test -count=1 -race -timeout 40m ./...

test-short: ## every package once without -race and without the gates (quicker while working)
	$(GO) test -count=1 ./...

bench: ## the figures of the README's table: ideal-pipeline ratios, jobs in flight, restart, OS-worker waits (bench/README.md)
	bash bench/run

build: ## build bin/loadpool, the product (no demo, no simulators)
	GOFLAGS= $(GO) build -o bin/loadpool ./cmd/loadpool

vet: ## go vet
	$(GO) vet ./...

lint: ## staticcheck (fetched through the module proxy, pinned)
	$(STATICCHECK) ./...

fmt-check: ## fail on gofmt differences
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt differences (run make fmt):"; echo "$$out"; exit 1; fi

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')
