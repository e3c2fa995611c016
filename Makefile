# evalserver: `make demo` runs the platform on one machine; `make test` runs the suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format bench starters clean install evalai-cli

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The test suite also signs in against a real slapd: the LDAP extra (python-ldap builds
# against libldap; .ci/run installs its headers). `make demo` does not need it.
LDAP_STAMP := $(VENV)/.installed-ldap
$(LDAP_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,ldap]'
	touch $(LDAP_STAMP)

# A local .env (DEBUG on, a generated key) that settings read, so that `manage.py ...`
# works as the README prints it in this checkout. Never overwritten; the environment wins.
.env:
	@printf '# Written by `make demo` for this checkout: DEBUG on, a key of its own.\nDEBUG=true\nSECRET_KEY=%s\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env
	@chmod 600 .env
	@echo "Wrote .env (DEBUG=true and a generated SECRET_KEY) for this checkout."

# EvalAI's own CLI, unchanged, in a virtualenv of its own (it pins click 7, which breaks
# Celery): the tests of EvalAI's API run it. Built once; see tests/evalai_cli.py.
evalai-cli: $(STAMP)
	$(PY) -c "from tests.evalai_cli import ensure_evalai_venv; ensure_evalai_venv()"

# Embedded mode: SQLite and an on-disk Celery broker under ./var, DEBUG on, a real worker.
demo: export DEBUG ?= true
demo: $(STAMP) .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py sandbox_check
	$(PY) manage.py demo_setup
	@echo "Starting a Celery worker and the web server on http://127.0.0.1:$(PORT)/ (Ctrl-C stops both)"
	@trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(VENV)/bin/celery -A evalserver worker --loglevel=INFO --concurrency=2 & worker=$$!; \
	$(VENV)/bin/gunicorn evalserver.wsgi --bind 127.0.0.1:$(PORT) --workers 2 --timeout 600 --access-logfile -

test: $(STAMP) $(LDAP_STAMP) evalai-cli
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

# The suite without the tests that start real processes (marked `slow` in tests/conftest.py):
# for a quick check while working; `make test` still runs everything.
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

starters: $(STAMP)
	$(PY) -m starters.build build/starters

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf build var .pytest_cache .ruff_cache .venv-evalai
