"""Helpers the tests (tests/) and the benchmarks (bench/) share, so that both start a
worker and build a bundle the same way: a Celery worker process started as production
starts it, and challenge bundles built in memory.

Standard library and PyYAML only: the benchmarks import this before Django is set up,
and nothing here runs in the web or worker processes.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- a process with a log


@dataclass
class StartedProcess:
    """A process started by `start_process`: its own session, output to `log_path`."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 4000) -> str:
        return f"--- {self.name} log (exit status {self.proc.poll()}) ---\n{self.log()[-chars:]}"


def start_process(
    name: str, argv: list[str], env: Mapping[str, str], log_dir: Path, *, cwd: Path = ROOT
) -> StartedProcess:
    """`argv` in a session of its own (so its whole group can be killed), stdin closed,
    stdout and stderr to `log_dir/NAME.log`: how the real-process tests start servers."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return StartedProcess(name, proc, log_path)


# ---------------------------------------------------------------- a Celery worker


class ProcessStartError(RuntimeError):
    """A process exited at start or was not ready in time; the message has its log."""


def wait_until_ready(
    proc: subprocess.Popen,
    ready: Callable[[], bool],
    log_tail: Callable[[], str],
    what: str,
    timeout: float,
) -> None:
    """Wait until `ready()`; ProcessStartError with the log's tail if `proc` exits first or
    `timeout` seconds pass. `ready` may raise while the process is still starting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ProcessStartError(f"{what} exited at start:\n{log_tail()}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.05)
    raise ProcessStartError(f"{what} was not ready within {timeout:g} s:\n{log_tail()}")


@dataclass
class CeleryWorker:
    """`celery -A evalserver worker` as production starts it, serving one queue (by
    default the environment's CELERY_QUEUE), in a process group of its own."""

    env: dict[str, str]
    log_path: Path
    node: str
    concurrency: int = 2
    extra_args: list[str] = field(default_factory=list)
    # Another interpreter and checkout (a copy placed elsewhere); default: this one.
    python: str | None = None
    cwd: Path = ROOT
    # A command prefix, such as setpriv dropping a capability.
    prefix: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    queue: str | None = None

    def command(self) -> list[str]:
        celery = (
            [self.python, "-m", "celery"]
            if self.python
            else [str(Path(sys.executable).parent / "celery")]
        )
        return [
            *self.prefix,
            *celery,
            "-A",
            "evalserver",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={self.concurrency}",
            "-n",
            self.node,
            "-Q",
            self.queue or self.env["CELERY_QUEUE"],
            "--without-gossip",
            "--without-mingle",
            *self.extra_args,
        ]

    def start(self, timeout: float = 60) -> CeleryWorker:
        """Start it and wait until its log says it is ready."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_ready(
            self.proc, lambda: " ready." in self.log(), self.log_tail, "the worker", timeout
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log()[-chars:]

    def pids(self) -> list[int]:
        """The main process and its pool processes (for profilers)."""
        if not self.proc:
            return []
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True
        ).stdout
        return [self.proc.pid, *(int(p) for p in out.split())]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole worker: main process, pool and anything they started."""
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Warm shutdown; the whole process group if it does not go within 20 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


# ---------------------------------------------------------------- zips and bundles

FIXED_TIME = (2020, 1, 1, 0, 0, 0)


@dataclass
class Entry:
    """A member with header fields set by hand."""

    data: bytes = b""
    mode: int | None = None  # unix mode bits, e.g. stat.S_IFLNK | 0o777
    compress_type: int = zipfile.ZIP_DEFLATED
    date_time: tuple[int, int, int, int, int, int] = FIXED_TIME


def symlink(target: str) -> Entry:
    return Entry(target.encode(), mode=stat.S_IFLNK | 0o777, compress_type=zipfile.ZIP_STORED)


def zip_bytes(
    files: Mapping[str, bytes | str | Entry],
    *,
    order: Iterable[str] | None = None,
    date_time: tuple[int, int, int, int, int, int] = FIXED_TIME,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A zip of `files` (name -> content); names ending in "/" are folder entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in order if order is not None else files:
            content = files[name]
            entry = (
                content
                if isinstance(content, Entry)
                else Entry(
                    content.encode() if isinstance(content, str) else content,
                    compress_type=compression,
                    date_time=date_time,
                )
            )
            info = zipfile.ZipInfo(name, date_time=entry.date_time)
            info.compress_type = zipfile.ZIP_STORED if name.endswith("/") else entry.compress_type
            if entry.mode is not None:
                info.create_system = 3
                info.external_attr = entry.mode << 16
            elif name.endswith("/"):
                info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
            zf.writestr(info, entry.data)
    return buffer.getvalue()


def script_bundle_zip(
    config: Mapping[str, Any],
    *,
    evaluate_source: str,
    files: Mapping[str, bytes | str] | None = None,
    script_files: Mapping[str, bytes | str] | None = None,
    description: str = "<p>probe</p>",
) -> bytes:
    """An EvalAI bundle laid out as the tests' and benchmarks' small challenges are:
    `config` as challenge_config.yaml, one description page, `files` (annotations,
    inputs) and an evaluation_script.zip whose __init__.py is `evaluate_source`, with
    `script_files` (a requirements.txt, say) beside it. The config names the files."""
    return zip_bytes(
        {
            "challenge_config.yaml": yaml.safe_dump(dict(config), sort_keys=False),
            "templates/description.html": description,
            **(files or {}),
            "evaluation_script.zip": zip_bytes(
                {"__init__.py": evaluate_source, **(script_files or {})}
            ),
        }
    )


def one_phase_config(
    *,
    title: str,
    name: str,
    codename: str,
    schema: Mapping[str, Any],
    phase: Mapping[str, Any] | None = None,
    splits: Iterable[Mapping[str, Any]] = ({"name": "Main", "codename": "main", "visibility": 3},),
    **challenge: Any,
) -> dict[str, Any]:
    """The challenge_config of a small challenge: one leaderboard (`schema`), one public
    phase scored against annotations/truth.json (`phase` adds or overrides its keys), and
    `splits` ({name, codename, visibility, and any phase-split keys}), in that order."""
    dataset_splits, phase_splits = [], []
    for i, split in enumerate(splits, start=1):
        extra = {k: v for k, v in split.items() if k not in {"name", "codename"}}
        dataset_splits.append({"id": i, "name": split["name"], "codename": split["codename"]})
        phase_splits.append(
            {"challenge_phase_id": 1, "leaderboard_id": 1, "dataset_split_id": i, **extra}
        )
    return {
        "title": title,
        "description": "templates/description.html",
        "evaluation_script": "evaluation_script.zip",
        "start_date": "2020-01-01 00:00:00",
        "end_date": "2099-01-01 00:00:00",
        "published": True,
        "leaderboard": [{"id": 1, "schema": dict(schema)}],
        "challenge_phases": [
            {
                "id": 1,
                "name": name,
                "codename": codename,
                "description": "templates/description.html",
                "is_public": True,
                "test_annotation_file": "annotations/truth.json",
                **(phase or {}),
            }
        ],
        "dataset_splits": dataset_splits,
        "challenge_phase_splits": phase_splits,
        **challenge,
    }
