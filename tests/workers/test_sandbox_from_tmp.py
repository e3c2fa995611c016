"""The sandbox and pipeline tests pass from a checkout under /tmp, where many people and CI
systems clone (issue 29): there the checkout's var/ (storage, the script cache) lies under
the /tmp every child sees empty, so a test that assumed "outside /tmp" would fail there
only. A copy of this checkout's files in a folder under /tmp runs them once, with the same
environment and a database of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from evalserver.testing import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.services]

# The sandbox's own tests and the two that watch a running evaluation from outside.
SELECTED = [
    "tests/workers/test_runner.py",
    "tests/workers/test_pipeline.py::test_cancel_by_owner_stops_a_running_evaluation",
    "tests/workers/test_pipeline.py::test_host_cancel_stops_a_running_evaluation_too",
]


def _copy_checkout(target: Path) -> None:
    """The files git knows of (tracked, and new ones not ignored), as they are on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        name = raw.decode()
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name, follow_symlinks=False)


@pytest.mark.timeout(900)
def test_the_sandbox_and_pipeline_tests_pass_from_a_checkout_under_tmp():
    base = Path(tempfile.mkdtemp(prefix="evalserver-clone-", dir="/tmp"))  # noqa: S108 - the point
    # As `git clone` leaves it: a folder others may pass through (mkdtemp makes it 0700).
    base.chmod(0o755)
    checkout = base / "evalserver"
    try:
        checkout.mkdir(mode=0o755)
        _copy_checkout(checkout)
        db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/evalserver")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            PYTHONPATH=str(checkout),
            # Its own test database: this session's is in use.
            DATABASE_URL=f"{db}_from_tmp",
            EVALSERVER_REQUIRE_SERVICES="1",
        )
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SELECTED],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=840,
        )
        summary = run.stdout[-4000:] + run.stderr[-2000:]
        assert run.returncode == 0, summary
        passed = re.search(r"(\d+) passed", run.stdout)
        assert passed and int(passed.group(1)) >= len(SELECTED), summary
        assert "skipped" not in run.stdout.splitlines()[-1], summary
    finally:
        shutil.rmtree(base, ignore_errors=True)
