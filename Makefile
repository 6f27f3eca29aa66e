# Greenlight: every target creates or reuses .venv and installs what it needs, so on a fresh
# machine `make demo` and `make test` are the only set-up commands.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.greenlight-installed
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast bench definition-snapshot lint clean

# constraints.txt pins the whole resolved set (pip freeze of a working .venv): installs are
# reproducible and skip pip's long backtracking through the SageMaker SDK's dependencies.
$(STAMP): setup.py constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $@

venv: $(STAMP)

## demo: run the training pipeline locally on the bundled data, then show the cost table
demo: $(STAMP)
	$(BIN)/greenlight pipeline definition --output $(VENV)/demo-definition.json
	$(BIN)/greenlight run
	$(BIN)/greenlight run
	$(BIN)/greenlight models list
	$(BIN)/greenlight models approve 2 --description "approved by make demo"
	$(BIN)/greenlight models show 2
	$(BIN)/greenlight cost --requests-per-day 10000

## test: the whole suite, slow checks included (what CI runs)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-fast: skip the tests marked slow
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

## bench: rerun the benchmarks and rewrite their sections of BENCHMARKS.md
bench: $(STAMP)
	$(BIN)/python -m benchmarks

## definition-snapshot: rebuild tests/snapshots/pipeline-definition.json after an intended change; commit it
definition-snapshot: $(STAMP)
	$(BIN)/python -m tests.snapshots

lint: $(STAMP)
	$(BIN)/ruff check greenlight pipelines deploy src tests benchmarks
	@if ls deploy/*.yaml >/dev/null 2>&1; then $(BIN)/cfn-lint deploy/*.yaml; else echo "no CloudFormation templates to lint"; fi

clean:
	rm -rf $(VENV) .greenlight .pytest_cache
