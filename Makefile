# evalserver: `make demo` runs the platform on one machine; `make test` runs the suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
# `make demo` says what it is doing, with the seconds since it started.
T0 := $(shell date +%s)
SAY = @printf '[%4ss] %s\n' "$$(( $$(date +%s) - $(T0) ))"

.PHONY: demo test test-fast lint format bench starters clean install evalai-cli

# Development: the project with its test and lint tools (pytest, Playwright, moto, ruff).
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

# Running only: what the demo needs, without the development tools.
$(RUN_STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	$(SAY) "Creating the virtualenv $(VENV) (once)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(SAY) "Installing what running needs (Django, Celery, pandas, scikit-learn, ...; a few minutes the first time, pip shows each package)"
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --progress-bar off -e .
	@touch $(RUN_STAMP)
	$(SAY) "Installed"

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
# gunicorn's control socket is this checkout's own (var/gunicorn.ctl), not one in the home
# folder shared by every demo on the machine; a path too long for a socket turns it off.
demo: export DEBUG ?= true
demo: $(RUN_STAMP) .env
	$(SAY) "Migrating the SQLite database under ./var"
	@$(PY) manage.py migrate --noinput -v0
	$(SAY) "Checking that the evaluation sandbox works on this machine (manage.py sandbox_check)"
	@$(PY) manage.py sandbox_check
	$(SAY) "Creating the demo users and loading the three starter challenges, approved"
	@$(PY) manage.py demo_setup
	$(SAY) "Starting a Celery worker and the web server on http://127.0.0.1:$(PORT)/ (Ctrl-C stops both)"
	@control="$(CURDIR)/var/gunicorn.ctl"; \
	if [ $${#control} -lt 100 ]; then socket="--control-socket $$control"; else socket="--no-control-socket"; fi; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(VENV)/bin/celery -A evalserver worker --loglevel=INFO --concurrency=2 & worker=$$!; \
	$(VENV)/bin/gunicorn evalserver.wsgi --bind 127.0.0.1:$(PORT) --workers 2 --timeout 600 --access-logfile - $$socket

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
