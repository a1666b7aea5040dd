# The two entry points a newcomer needs: `make serve` and `make test`.
# Each sets itself up from nothing (venv, dependencies).
SHELL := /bin/bash
VENV ?= .venv
# The first Python >= 3.11 on PATH.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then echo $$p; break; fi; done)
STAMP := $(VENV)/.lamina-setup

.PHONY: setup serve test test-cluster test-no-zygotes lint bench bench-setup testbed testbed-stop clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "lamina needs Python >= 3.11 (none found on PATH)" >&2; exit 1; fi
	@# System tools: zip/unzip (tests, benchmarks), iproute2 and nftables (VPC data plane), curl (tests),
	@# chromium (the console's end-to-end tests), Debian's static busybox (the runnable test runtime image),
	@# Debian's awscli (AWS CLI v2 at /usr/bin/aws: `aws logs tail`; the venv's aws is v1, first on PATH),
	@# openssl (lamina's CA and the certificate of its public API names, made at first start as root).
	@# gcc and libc6-dev (lamina-init, built static). Debian's postgresql: the backend tests start
	@# their own PostgreSQL server (lamina server --database postgresql://...; no service is enabled).
	@missing=""; for t in zip unzip ip nft curl chromium busybox openssl gcc; do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	[ -x /usr/bin/aws ] || missing="$$missing awscli"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if command -v gcc >/dev/null 2>&1 && [ "$$(gcc -print-file-name=libc.a)" = libc.a ]; then missing="$$missing libc6-dev"; fi; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			pkgs=$$(echo $$missing | sed 's/\bip\b/iproute2/; s/\bnft\b/nftables/; s/\bbusybox\b/busybox-static/; s/\bgcc\b/gcc libc6-dev/'); \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null; \
		else echo "note: missing$$missing (install them for the tests and the VPC data plane)" >&2; fi; fi
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@# The Python runtimes functions run on (awslambdaric + boto3 per host python3.X), mounted at /var/runtime.
	$(VENV)/bin/python -m lamina.runtime.pythonrt install --dest $(VENV)/lamina-runtimes
	@# lamina-init, PID 1 of environments with extensions (static C; the server builds it on first use otherwise).
	$(VENV)/bin/python -m lamina.runtime.init_binary $(VENV)/lamina-init || true
	@touch $(STAMP)

serve: setup
	$(VENV)/bin/lamina server

# Everything but the several-nodes tests (make test-cluster), which CI runs too: the modules not
# marked serial, on TEST_WORKERS parallel workers when it is above 1 (pytest-xdist; each runs whole
# modules, so a module's server is started once), then the modules marked serial (they look at the
# whole host) alone. 3 workers by default: on 2 shared cores they take make test from 21 to about 9
# minutes; TEST_WORKERS=1 runs everything in one process.
TEST_WORKERS ?= 3
test: setup
	$(VENV)/bin/python -m pytest -q -m "not backend and not cluster and not serial" \
		$(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile) --durations=25
	$(VENV)/bin/python -m pytest -q -m "serial and not backend and not cluster" --durations=10

# The several-nodes tests (issue 21): the PostgreSQL half of the tests run on both metadata backends,
# the S3 blob store, nodes sharing a database, the VPC overlay and the 3-node test bed.
test-cluster: setup
	$(VENV)/bin/python -m pytest -q -m "backend or cluster" --durations=15

# The tests that run functions (tests/privileged), every runtime exec'd: lamina server --no-zygotes
# (the zygotes' own tests, which start their servers with --zygotes on, are not run twice).
test-no-zygotes: setup
	LAMINA_ZYGOTES=off $(VENV)/bin/python -m pytest -q -m "not backend and not cluster" tests/privileged \
		--deselect tests/privileged/test_zygotes.py --deselect tests/privileged/test_zygote_attacks.py

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo

bench: setup
	$(VENV)/bin/python bench/run.py

# The benchmarks' own venv (moto[server], boto3, py-spy: never lamina's dependencies), bench/.venv-bench.
# The benchmarks create it on first use too.
bench-setup: setup
	cd bench && $(abspath $(VENV))/bin/python -c 'import _common; _common.bench_venv_bin("moto_server")'

# Three lamina nodes, PostgreSQL and an S3 endpoint on this machine, network namespaces standing for
# hosts (docs/testbed.md; root). Runs until Ctrl-C; testbed-stop removes one whose starter died.
testbed: setup
	PYTHONPATH=src $(VENV)/bin/python tests/lamina_testbed.py

testbed-stop: setup
	PYTHONPATH=src $(VENV)/bin/python tests/lamina_testbed.py stop

clean:
	rm -rf $(VENV) build src/*.egg-info
