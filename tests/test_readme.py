"""Every command block of the README runs as printed against a demo-like stack: what
`make demo` starts (SQLite and the on-disk broker under a `var/` of its own, DEBUG on,
`demo_setup`'s users and starters, a real Celery worker and gunicorn), from a folder laid
out as the checkout is. The one change to the text: `localhost:8000` becomes the port this
stack listens on, since the suite cannot count on owning 8000.

Each `curl` fails on an HTTP error (`--fail-with-body`), and the blocks run in one bash
with `set -eo pipefail`, so a command that answers 4xx or exits non-zero fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.services import spare_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent

# Blocks not run here, each for a reason; every one must still be in the README.
EXCUSED = {
    "make demo     #": "starts the stack this test starts by its parts (and installs into .venv)",
    "CELERY_BROKER_URL=redis://127.0.0.1:6379/0 make test": "the suite itself",
    "docker compose up": "needs Docker",
    "pip install --no-deps evalai==1.3.18": "installs from PyPI; tests/evalai_cli.py "
    "builds the same recipe and tests/e2e/test_evalai_cli.py runs the CLI",
}


def readme_blocks() -> list[str]:
    """The README's ```sh blocks, indentation (inside list items) removed."""
    blocks = []
    for match in re.finditer(r"^( *)```sh\n(.*?)^\1```", README.read_text(), re.M | re.S):
        indent = len(match.group(1))
        blocks.append("\n".join(line[indent:] for line in match.group(2).splitlines()))
    return blocks


def runnable_blocks() -> list[str]:
    blocks = readme_blocks()
    for key in EXCUSED:
        assert sum(key in b for b in blocks) == 1, f"excused block {key!r} not in the README"
    return [b for b in blocks if not any(key in b for key in EXCUSED)]


def _wait_for(url: str, proc: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited at start:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - 127.0.0.1
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"{url} not answering:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def demo(tmp_path):
    """A checkout-like folder (links to the project's files, a `var/` of its own) and the
    demo's processes on it; yields (folder, env, port)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {"var", "build", ".venv", ".env", "test-artifacts", ".git"}:
            (checkout / entry.name).symlink_to(entry)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST", "DATABASE_URL", "CELERY_", "EVALSERVER_CONFIG"))
    }
    env.update(
        DEBUG="true",
        SECRET_KEY="readme-test-" + "x" * 40,
        EVALSERVER_VAR_DIR=str(checkout / "var"),
        DJANGO_SETTINGS_MODULE="evalserver.settings",
        PYTHONPATH=str(ROOT),
        HOME=str(home),
        PATH=f"{BIN}{os.pathsep}{env_path()}",
    )
    for command in (["migrate", "--noinput", "-v0"], ["demo_setup"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    port = spare_port()
    logs = tmp_path / "worker.log", tmp_path / "web.log"
    with logs[0].open("wb") as worker_log, logs[1].open("wb") as web_log:
        worker = subprocess.Popen(
            [str(BIN / "celery"), "-A", "evalserver", "worker", "--loglevel=INFO", "-c", "2"],
            cwd=checkout,
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        web = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "evalserver.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--no-control-socket",
            ],
            cwd=checkout,
            env=env,
            stdout=web_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", web, logs[1])
        deadline = time.monotonic() + 120
        while " ready." not in logs[0].read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker not ready:\n{logs[0].read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield checkout, env, port, logs
    finally:
        for proc in (web, worker):
            proc.terminate()
        for proc in (web, worker):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def env_path() -> str:
    return os.environ.get("PATH", "/usr/bin:/bin")


def test_every_readme_command_runs_as_printed_against_the_demo(demo):
    checkout, env, port, logs = demo
    blocks = runnable_blocks()
    script = ["set -eo pipefail", 'curl() { command curl --fail-with-body "$@"; }']
    for number, block in enumerate(blocks, 1):
        script.append(f"echo '### README block {number}' >&2")
        script.append(block.replace("localhost:8000", f"127.0.0.1:{port}"))
    passwords = dict(
        line.split() for line in (checkout / "var" / "demo-passwords").read_text().splitlines()
    )
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=checkout,
        env=env,
        input=passwords["participant"] + "\n",  # `evalserver-cli login` asks for it
        capture_output=True,
        text=True,
        timeout=900,
        start_new_session=True,  # no terminal: getpass reads the password from stdin
    )
    assert done.returncode == 0, (
        f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}\n"
        f"worker:\n{logs[0].read_text(errors='replace')[-2000:]}"
    )
    out = done.stdout
    # What each block should have shown, read from its output.
    assert '"remaining"' in out  # the quota
    assert re.search(r'"dev_split": \{\s*"Accuracy"', out)  # evaluate_local's scores
    assert re.search(r"submission \d+: finished", out), out[-2000:]
    assert re.search(r"^1 +my-team +0\.\d{4}", out, re.M), out[-2000:]  # the leaderboard row
    assert (checkout / "data").is_dir() and any((checkout / "data").iterdir())
