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
PLUGIN_DIR ?= /opt/nomad/plugins

export GOARCH CC
export CGO_ENABLED := 1

.DEFAULT_GOAL := help
.PHONY: help gobridge gotest dev install-plugin proto test bench wheel clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-15s %s\n", $$1, $$2}'

gobridge: ## build the Go bridge into nomad_ctr/_bridge/libgobridge.so
	cd gobridge && $(GO) build -buildmode=c-shared -trimpath \
	  -ldflags "-s -w -X main.packageVersion=$(VERSION)" -o ../$(LIB) .

gotest: ## run the Go unit tests of gobridge
	cd gobridge && $(GO) vet . && $(GO) test -count=1 .

dev: gobridge ## build the bridge and install the package editable with test extras
	$(PYTHON) -m pip install -e '.[test]'

# Finds the console script pip wrote for PYTHON (its scripts dir, then the user scheme's),
# else the first on PATH (that may be a pyenv shim or another Python's). A copy is enough:
# its #! line keeps running PYTHON's nomad_ctr.
install-plugin: ## install containerd-driver into PLUGIN_DIR (default /opt/nomad/plugins) for Nomad
	@src=$$($(PYTHON) -c 'import os, sysconfig; \
	  dirs = [sysconfig.get_path("scripts"), sysconfig.get_path("scripts", os.name + "_user")]; \
	  print(next((p for p in (os.path.join(d, "containerd-driver") for d in dirs) if os.access(p, os.X_OK)), ""))' \
	  2>/dev/null); \
	[ -n "$$src" ] || src=$$(command -v containerd-driver 2>/dev/null || true); \
	if [ -z "$$src" ]; then \
	  echo "make install-plugin: containerd-driver is not installed (not in $(PYTHON)'s scripts dir, not on PATH); run 'make dev' or '$(PYTHON) -m pip install .' first" >&2; \
	  exit 1; \
	fi; \
	install -d -m 0755 "$(PLUGIN_DIR)" && \
	install -m 0755 "$$src" "$(PLUGIN_DIR)/containerd-driver" && \
	echo "installed $$src as $(PLUGIN_DIR)/containerd-driver"

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
