# nomad_ctr developer targets. `make help` lists them.
# A cross build (e.g. a future Makefile.arm64) includes this file and overrides only
# GOARCH, CC and PLAT; everything below reads them.

PYTHON  ?= python3
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOARCH  ?= $(shell $(GO) env GOARCH 2>/dev/null)
CC      ?= cc
PLAT    ?=
VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -n1)
LIB     := nomad_ctr/_bridge/libgobridge.so

export GOARCH CC
export CGO_ENABLED := 1

.DEFAULT_GOAL := help
.PHONY: help gobridge gotest dev proto test bench wheel clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

gobridge: ## build the Go bridge into nomad_ctr/_bridge/libgobridge.so
	cd gobridge && $(GO) build -buildmode=c-shared -trimpath \
	  -ldflags "-s -w -X main.packageVersion=$(VERSION)" -o ../$(LIB) .

gotest: ## run the Go unit tests of gobridge
	cd gobridge && $(GO) vet . && $(GO) test -count=1 .

dev: gobridge ## build the bridge and install the package editable with test extras
	$(PYTHON) -m pip install -e '.[test]'

proto: ## regenerate the protobuf/gRPC modules (scripts/gen_proto.sh)
	scripts/gen_proto.sh

test: ## run the test suite (scripts/test.sh)
	scripts/test.sh

bench: gobridge ## run the ratio benchmarks in bench/ (scripts, not tests; need root + containerd)
	@for f in bench/bench_*.py; do echo "== $$f"; $(PYTHON) $$f || exit 1; done

wheel: ## build a py3-none-<platform> wheel into dist/
	$(PYTHON) -m pip wheel --no-deps -w dist . $(if $(PLAT),--config-settings=--build-option=--plat-name=$(PLAT))

clean: ## remove build outputs
	rm -rf build dist *.egg-info $(LIB) nomad_ctr/_bridge/libgobridge.h
