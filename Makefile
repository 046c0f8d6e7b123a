# Dragoman: `make run` sets up and runs the main job, `make test` sets up and tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROTOS := $(shell find protos -name '*.proto')
STAMP := $(VENV)/.installed
WEB := clients/web
WEB_SOURCES := $(shell find $(WEB)/src -type f 2>/dev/null) $(wildcard $(WEB)/*.html $(WEB)/*.css \
	$(WEB)/*.mjs $(WEB)/*.json $(WEB)/*.yaml) $(PROTOS)

.PHONY: setup web system-packages deploy-tools run serve stack test lint format proto proto-check \
	proto-breaking bench soak clean

setup: $(STAMP) web

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

# The live-captions page: TypeScript from the protos (buf + protoc-gen-es), bundled by esbuild.
web: $(WEB)/dist/.built

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB)/dist/.built: $(WEB)/node_modules/.installed $(WEB_SOURCES)
	cd $(WEB) && npm run --silent build
	touch $@

# `docker compose` and `kustomize` check the deployment files (no Docker engine, no cluster):
# static binaries from pinned Debian packages, into .tools/ (hadolint and kubernetes-validate
# come with the dev extra).
TOOLS := .tools
FETCH_DEB := deploy/tools/fetch-deb-binary.sh
deploy-tools: $(TOOLS)/docker/cli-plugins/docker-compose $(TOOLS)/bin/kustomize

$(TOOLS)/docker/cli-plugins/docker-compose: $(FETCH_DEB)
	$(FETCH_DEB) pool/main/d/docker-compose/docker-compose_2.26.1-4_amd64.deb \
		47681197cb2b1ab88206b42a1a92fc75f50d9530a6322d03494a473eed0408ea \
		usr/libexec/docker/cli-plugins/docker-compose $@

$(TOOLS)/bin/kustomize: $(FETCH_DEB)
	$(FETCH_DEB) pool/main/k/kustomize/kustomize_5.6.0+ds-1+b2_amd64.deb \
		552bbe5563b522685b10f75a9a226bfbee9778fc313b205d595fdbb7e9c70e33 \
		usr/bin/kustomize $@

# Debian's Chromium for the browser tests and redis-server for the shared caption rooms of
# the stack and its tests (root installs what is missing; others are told how).
SYSTEM_PACKAGES = chromium redis-server
system-packages:
	@missing="$$(for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
		else echo "the tests need: sudo apt-get install -y $$missing"; exit 1; fi; fi

run: setup
	$(BIN)/dragoman demo --translate pt

serve: setup
	$(BIN)/dragoman serve

# The cluster's topology on loopback: a process per replica, Envoy in front.
STT_REPLICAS ?= 2
TRANSLATE_REPLICAS ?= 1
stack: setup system-packages
	$(BIN)/dragoman stack --stt-replicas $(STT_REPLICAS) --translate-replicas $(TRANSLATE_REPLICAS)

test: setup system-packages deploy-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/buf lint
	$(BIN)/buf format --exit-code --diff
	$(MAKE) proto-breaking
	$(MAKE) proto-check
	cd $(WEB) && npm run --silent check && npm test --silent
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/buf lint

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/buf format -w

# Generated code is never edited: change the .proto files and run this.
proto: setup
	$(BIN)/python protos/generate.py

proto-check: proto
	@test -z "$$(git status --porcelain -- dragoman/api/)" || \
		(git status --short -- dragoman/api/; echo "generated protobuf code differs from protos/: run 'make proto' and commit"; exit 1)

# Clients and replicas of the last release keep working: its protos, compiled into an image
# (see protos/releases/README.md), against the working tree's.
proto-breaking: setup
	$(BIN)/buf breaking --against protos/releases/v0.1.0.binpb

bench: setup
	$(BIN)/dragoman bench

# Not part of `make test`: six real-time streams for three minutes, figures printed.
soak: setup
	$(BIN)/dragoman soak --streams 6 --minutes 3

clean:
	rm -rf $(VENV) $(TOOLS) build *.egg-info .pytest_cache .ruff_cache $(WEB)/node_modules $(WEB)/gen $(WEB)/dist
