# Greenlight: every target creates or reuses .venv and installs what it needs, so on a fresh
# machine `make demo` and `make test` are the only set-up commands.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.greenlight-installed
TOOLS   := $(VENV)/.greenlight-tools
PYTEST_ARGS ?=
# One test worker per core (pytest-xdist): most tests wait on subprocesses and servers, not the CPU.
PYTEST_WORKERS ?= auto
DEMO_HOME ?= .greenlight-demo

.PHONY: venv tools demo test test-slow bench definition-snapshot lint clean

# constraints.txt pins the whole resolved set (pip freeze of a working .venv): installs are
# reproducible and skip pip's long backtracking through the SageMaker SDK's dependencies.
$(STAMP): setup.py constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $@

venv: $(STAMP)

# The image tests' tools, from Debian: a real OCI registry (CNCF distribution), skopeo as an
# independent reader, htpasswd for the registry's basic-auth variant. Installed when missing
# (sudo when not root; the package lists are refreshed only if the first install fails).
IMAGE_TOOLS := docker-registry skopeo htpasswd
APT_PACKAGES := docker-registry skopeo apache2-utils
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES)

$(TOOLS): Makefile
	@missing=""; for tool in $(IMAGE_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing the image-test tools (missing:$$missing): $(APT_PACKAGES)"; \
		$(APT_INSTALL) || { $(SUDO) apt-get update -q && $(APT_INSTALL); } || exit 1; \
	fi
	@mkdir -p $(VENV) && touch $@

tools: $(TOOLS)

## demo: the whole lifecycle on this machine, narrated (train, approve, deploy, predict, retrain, roll back, cost)
demo: $(STAMP)
	$(BIN)/greenlight demo --home $(DEMO_HOME)

## test: every test not marked slow, the type check (mypy) included; under five minutes once installed
test: $(STAMP) $(TOOLS)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

## test-slow: the tests marked slow (whole pipeline runs, big models, the demo, the notebooks); CI runs
## `make test` then `make test-slow`, so together they run everything
test-slow: $(STAMP) $(TOOLS)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m slow $(PYTEST_ARGS)

## bench: rerun the benchmarks and rewrite their sections of BENCHMARKS.md
bench: $(STAMP) $(TOOLS)
	$(BIN)/python -m benchmarks

## definition-snapshot: rebuild tests/snapshots/pipeline-definition.json after an intended change; commit it
definition-snapshot: $(STAMP)
	$(BIN)/python -m tests.snapshots

lint: $(STAMP)
	$(BIN)/ruff check greenlight pipelines deploy src tests benchmarks
	@if ls deploy/*.yaml >/dev/null 2>&1; then $(BIN)/cfn-lint deploy/*.yaml; else echo "no CloudFormation templates to lint"; fi

clean:
	rm -rf $(VENV) .greenlight .pytest_cache
