# Every target installs what it needs through `make install` (idempotent: stamps skip done work).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13 (Lambda's runtime): $(PYTHON313) if given, else pyenv's 3.13.x, else python3.13 on PATH.
PYTHON313 ?= $(shell \
  for p in "$$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3 $$HOME/.pyenv/versions/3.13*/bin/python3 \
           /usr/local/bin/python3.13 /usr/bin/python3.13; do \
    [ -x "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$p"; exit 0; }; \
  done; \
  PYENV_VERSION=3.13.0 python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
ENABLE ?=
# make test fails below this coverage (the lines of functions/, stacks/, demo/ run by the tests): a few points under
# what it measures, raised as tests are added, never lowered to let a change in.
COVERAGE_FLOOR ?= 90
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_CLI_NOTICES := false

.PHONY: help install demo preview bench synth test lifetime lint deploy diff destroy clean settings docs grants

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(VENV)/.installed $(VENV)/checkov/.installed node_modules/.installed ## venv on python3.13 with every requirement, checkov, and the pinned cdk CLI

$(VENV)/.installed: requirements.txt requirements-dev.txt functions/*/requirements.txt pyproject.toml
	@if [ -z "$(PYTHON313)" ]; then echo "error: Python 3.13 not found (pyenv 3.13.x or python3.13 on PATH); set PYTHON313=/path/to/python3.13" >&2; exit 1; fi
	@[ -x $(PY) ] || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# checkov pins boto3/botocore older than the project's: it gets a venv of its own inside the project's.
$(VENV)/checkov/.installed: requirements-checkov.txt
	@if [ -z "$(PYTHON313)" ]; then echo "error: Python 3.13 not found; set PYTHON313=/path/to/python3.13" >&2; exit 1; fi
	@[ -x $(VENV)/checkov/bin/python ] || $(PYTHON313) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: install ## every automation end-to-end on an embedded AWS (moto) + local HTTPS webhooks; files in demo-output/
	$(CDK) synth --quiet -c enable=all --output cdk.out.demo
	$(PY) -m demo --cdk-out cdk.out.demo --out demo-output

preview: install ## AUTOMATION=<name> [EVENT=file.json]: report-mode run against your account; changes nothing
	@[ -n "$(AUTOMATION)" ] || { echo "usage: make preview AUTOMATION=<name> [EVENT=file.json]" >&2; exit 2; }
	@$(PY) -m opsauto preview $(AUTOMATION) $(if $(EVENT),--event $(EVENT)) $(if $(ENABLE),--enable $(ENABLE))

bench: install ## every benchmark + cold-start import ratios + deployment sizes -> benchmarks/RESULTS.md
	$(CDK) synth --quiet -c enable=all --output cdk.out.bench
	$(PY) -m benchmarks --cdk-out cdk.out.bench --write benchmarks/RESULTS.md

synth: install ## synthesize every stack (ENABLE=a,b or ENABLE=all switches automations on)
	$(CDK) synth --quiet $(if $(ENABLE),-c enable=$(ENABLE)) --output cdk.out

test: install ## lint, synth every automation + cfn-lint + checkov, and the whole test suite with coverage
	$(MAKE) --no-print-directory lint
	$(CDK) synth --quiet -c enable=all --output cdk.out.test
	$(VENV)/bin/cfn-lint --format parseable -- cdk.out.test/*.template.json
	$(VENV)/checkov/bin/checkov --quiet --compact --skip-download --framework cloudformation -f cdk.out.test/*.template.json
	$(PY) -m pytest -n 2 --dist loadfile --cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR)

lifetime: install ## the long lifetime simulations (simulated weeks to years under faults); make test runs short ones
	LIFETIME=long $(PY) -m pytest -n 2 --dist loadfile -o timeout=7200 tests/lifetime

lint: install ## ruff (with the complexity gate) + mypy strict (functions/, stacks/, app.py, demo/)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

deploy: install ## cdk deploy every stack into the current credentials' account (ENABLE=... as for synth)
	$(CDK) deploy --all $(if $(ENABLE),-c enable=$(ENABLE))

diff: install ## cdk diff against the deployed stacks
	$(CDK) diff --all $(if $(ENABLE),-c enable=$(ENABLE))

destroy: install ## remove every deployed stack of this app
	$(CDK) destroy --all $(if $(ENABLE),-c enable=$(ENABLE))

settings: install ## rewrite cdk.json's settings with the defaults of stacks/settings
	$(PY) -m stacks.settings --write

docs: install ## regenerate the settings tables in docs/ from the settings models (tests/stacks/test_docs.py checks them)
	$(PY) -m stacks.settings.docs --write

grants: install ## run every function under its synthesized role (moto IAM on) and rewrite docs/security.md's grant tables
	GRANTS_WRITE=1 $(PY) -m pytest -q -p no:cacheprovider tests/iam/test_least_privilege.py

clean: ## remove build output, the venv and node_modules
	rm -rf .build cdk.out cdk.out.test cdk.out.demo cdk.out.bench demo-output .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov $(VENV) node_modules
