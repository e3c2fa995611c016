"""Issue 22: `make demo` runs two gunicorn workers, and its throttle counters lived in
each process's memory, so the login budget doubled. The default cache is now files under
EVALSERVER_VAR_DIR, which every process of the machine shares: two processes here spend
one budget between them (and, as the control, per-process memory would not)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# One process: `attempts` sign-in attempts from one address, counted by the project's
# own throttle through whatever cache the settings give; prints how many were let through.
SCRIPT = """
import sys
import django

django.setup()
from django.conf import settings
from django.test import RequestFactory
from rest_framework.request import Request

from challenges.throttles import PerAddress, throttle

settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login_ip": "5/minute"}
limiter = throttle("login_ip", PerAddress)
allowed = 0
for _ in range(int(sys.argv[1])):
    request = Request(RequestFactory().post("/accounts/login/", REMOTE_ADDR="198.51.100.9"))
    allowed += bool(limiter().allow_request(request, None))
print(allowed)
"""


def _process(var_dir: Path, attempts: int, **extra: str) -> int:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST") and k not in ("CACHE_URL", "CACHE_URL_FILE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="evalserver.settings",
        EVALSERVER_VAR_DIR=str(var_dir),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(attempts)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


def test_two_processes_share_one_throttle_budget_by_default(tmp_path):
    assert _process(tmp_path, 3) == 3
    assert _process(tmp_path, 5) == 2  # the other process spent three of the five
    assert (tmp_path / "throttle-cache").is_dir()


def test_per_process_memory_would_double_it(tmp_path):
    assert _process(tmp_path, 3, CACHE_URL="locmem://") == 3
    assert _process(tmp_path, 5, CACHE_URL="locmem://") == 5
