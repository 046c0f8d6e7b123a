# Dragoman: `make run` sets up and runs the main job, `make test` sets up and tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROTOS := $(shell find protos -name '*.proto')
STAMP := $(VENV)/.installed

.PHONY: setup run serve test lint format proto proto-check bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

run: setup
	$(BIN)/dragoman demo --translate pt

serve: setup
	$(BIN)/dragoman serve

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/buf lint
	$(BIN)/buf format --exit-code --diff
	$(MAKE) proto-check
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
	$(BIN)/python -m dragoman.protogen

proto-check: proto
	@test -z "$$(git status --porcelain -- dragoman/)" || \
		(git status --short -- dragoman/; echo "generated protobuf code differs from protos/: run 'make proto' and commit"; exit 1)

bench: setup
	$(BIN)/dragoman bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
