"""`python -m bench --quick` runs end to end against real PostgreSQL and Redis.

Only that it runs and prints every figure as a number: speed is the benchmark's business,
not the test suite's (CI machines vary too much to assert on it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import REQUIRED
from tests.conftest import port_open, require_service

ROOT = Path(__file__).resolve().parent.parent
BENCH_LINE = re.compile(r"^BENCH (\S+) (\S+) (\S+)$", re.MULTILINE)

pytestmark = pytest.mark.services


def _bench_env() -> dict[str, str]:
    """The suite's environment, minus anything that would point the benchmark elsewhere
    than PostgreSQL and Redis (it defaults to the local servers)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    if not env.get("DATABASE_URL", "").startswith("postgres"):
        env.pop("DATABASE_URL", None)
    if not env.get("CELERY_BROKER_URL", "").startswith("redis"):
        env.pop("CELERY_BROKER_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


@pytest.mark.timeout(660)
def test_quick_bench_prints_every_figure_as_a_number():
    require_service("postgresql on 127.0.0.1:5432", port_open("127.0.0.1", 5432))
    require_service("redis on 127.0.0.1:6379", port_open("127.0.0.1", 6379))

    # The bench tears down what it made (worker, database, queue, folders) on SIGTERM;
    # SIGKILL, which subprocess.run's timeout sends, would leave its worker running.
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        env=_bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=600)  # about 4 minutes on a busy 2-core box
    except subprocess.TimeoutExpired:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=60)
        pytest.fail(f"the quick bench ran past 10 minutes:\n{stdout[-4000:]}\n{stderr[-4000:]}")
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    figures = {name: value for name, value, _unit in BENCH_LINE.findall(done.stdout)}
    missing = [name for name in REQUIRED if name not in figures]
    assert not missing, f"no BENCH line for {missing}:\n{done.stdout}"
    for name in REQUIRED:
        assert float(figures[name]) >= 0, (name, figures[name])
    assert "targets missed" in done.stdout or "every target met" in done.stdout
