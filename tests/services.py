"""Real services for tests: a Celery worker process against PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from evalserver.testing import ROOT, CeleryWorker, wait_until_ready  # noqa: F401  (ROOT: tests import it from here)

# The worker launcher is shared with the benchmarks (evalserver.testing).
WorkerProcess = CeleryWorker


def worker_env(
    *,
    database_name: str,
    broker_url: str,
    media_root: Path,
    var_dir: Path,
    cache_dir: Path,
    queue: str,
    pip_args: str = "--no-index",
    **extra: str,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/evalserver")
    base = db.rsplit("/", 1)[0]
    env.update(
        {
            "DATABASE_URL": f"{base}/{database_name}",
            "CELERY_BROKER_URL": broker_url,
            "CELERY_QUEUE": queue,
            "MEDIA_ROOT": str(media_root),
            "EVALSERVER_VAR_DIR": str(var_dir),
            "EVALUATION_CACHE_DIR": str(cache_dir),
            "EVALUATION_PIP_ARGS": pip_args,
            # Webhook tests aim only at servers they run on 127.0.0.1.
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "WEBHOOK_RETRY_BASE_S": "0.2",
            "WEBHOOK_MAX_ATTEMPTS": "4",
            "DJANGO_SETTINGS_MODULE": "evalserver.settings",
            **extra,
        }
    )
    return env


@contextlib.contextmanager
def worker_machine(root: Path, *, name: str):
    """The folders of one worker machine, as worker_env's keyword arguments: the test
    database, its own media root (made, under `root`), var folder, and a script cache the
    sandbox user can read (outside pytest's 0700 folders), removed afterwards."""
    from django.db import connection

    from tests.conftest import postgres_in_use, require_service

    require_service("postgresql (set DATABASE_URL=postgres://...)", postgres_in_use())
    cache = Path(tempfile.mkdtemp(prefix=f"evalserver-{name}-cache-"))
    cache.chmod(0o755)
    folders = {
        "database_name": connection.settings_dict["NAME"],
        "media_root": root / f"{name}-media",
        "var_dir": root / f"{name}-var",
        "cache_dir": cache,
    }
    folders["media_root"].mkdir()
    try:
        yield folders
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def new_queue() -> str:
    return f"evalserver-test-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- a Redis of a test's own


def spare_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RedisProcess:
    """A throwaway `redis-server` on 127.0.0.1 that keeps nothing on disk.

    `kill()` then `start()` is a Redis restart that loses every queued message, on the
    same port, so clients configured with its URL reconnect to it.
    """

    workdir: Path
    port: int = field(default_factory=spare_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until_ready(
            self.proc,
            lambda: self.client().ping(),
            lambda: self.log()[-2000:],
            "redis-server",
            timeout,
        )
        return self

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; whatever it held is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> RedisProcess:
        self.kill()
        return self.start()


@contextlib.contextmanager
def publishing_to(broker_url: str, queue: str):
    """Make this process's Celery app send tasks to `broker_url`, queue `queue`, then restore.

    Celery reads the broker URL from the environment before its `conf` (CELERY_BROKER_URL,
    CELERY_BROKER_WRITE_URL), and caches its queues, router and connection pools on first
    use: setting `conf.broker_url` alone would keep publishing to the session's broker.
    """
    from kombu import pools

    from evalserver.celery import app

    def forget() -> None:
        for name in ("queues", "default_queue", "router"):
            app.amqp.__dict__.pop(name, None)
        app.amqp._producer_pool = None
        app._pool = None
        pools.reset()  # drops (and closes) every cached connection and producer pool

    names = ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL")
    before_env = {name: os.environ.get(name) for name in names}
    before = (app.conf.broker_url, app.conf.task_default_queue)
    forget()
    os.environ.pop("CELERY_BROKER_WRITE_URL", None)
    os.environ["CELERY_BROKER_URL"] = broker_url
    app.conf.broker_url, app.conf.task_default_queue = broker_url, queue
    try:
        assert app.connection_for_write().as_uri(include_password=True) == broker_url
        yield app
    finally:
        forget()
        for name, value in before_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        app.conf.broker_url, app.conf.task_default_queue = before


# ---------------------------------------------------------------- process trees


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    uid: int
    start_ticks: int  # with the pid, names one process even if the pid is reused later


def _proc_info(pid: int) -> ProcInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # a zombie has stopped running; nobody may reap it here
        return None
    uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
    return ProcInfo(pid=pid, ppid=int(fields[1]), uid=uid, start_ticks=int(fields[19]))


def process_tree(root: int) -> list[ProcInfo]:
    """Every live process descended from `root` (not `root` itself)."""
    infos = [
        info
        for info in (_proc_info(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit())
        if info is not None
    ]
    children: dict[int, list[ProcInfo]] = {}
    for info in infos:
        children.setdefault(info.ppid, []).append(info)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def still_running(processes: list[ProcInfo]) -> list[ProcInfo]:
    """Those of `processes` that still run (same pid and start time, not a zombie)."""
    alive = []
    for old in processes:
        now = _proc_info(old.pid)
        if now is not None and now.start_ticks == old.start_ticks:
            alive.append(now)
    return alive


def build_probe_wheel(folder: Path, *, name: str = "evalserver_probe_pkg", value: int = 7) -> Path:
    """A one-module wheel, written by hand, for requirements environments built without any
    package index (`--no-index --find-links folder`)."""
    import base64
    import hashlib
    import zipfile

    dist = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = {value}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: evalserver-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }

    def digest(text: str) -> str:
        raw = hashlib.sha256(text.encode()).digest()
        return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    record = "".join(
        f"{path},{digest(text)},{len(text.encode())}\n" for path, text in files.items()
    )
    files[f"{dist}/RECORD"] = record + f"{dist}/RECORD,,\n"
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


# ---------------------------------------------------------------- an S3 server of a test's own


@dataclass
class S3Server:
    """moto's standalone S3-speaking server (`python -m moto.server`) on 127.0.0.1: a real
    process answering HTTP, as MinIO or AWS would, not a mock object in this process."""

    workdir: Path
    port: int = field(default_factory=spare_port)
    bucket: str = "evalserver-test"
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, prefix: str = "") -> dict[str, str]:
        """The S3_* variables that point evalserver's storage at this server."""
        return {
            "S3_BUCKET": self.bucket,
            "S3_ENDPOINT_URL": self.url,
            "S3_ACCESS_KEY_ID": "testing",
            "S3_SECRET_ACCESS_KEY": "testing",
            "S3_REGION": "us-east-1",
            "S3_PREFIX": prefix,
        }

    def start(self, timeout: float = 30) -> S3Server:
        import urllib.request

        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "moto.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready() -> bool:
            urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()  # noqa: S310
            self.client().create_bucket(Bucket=self.bucket)
            return True

        wait_until_ready(self.proc, ready, lambda: self.log()[-2000:], "moto.server", timeout)
        return self

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def log(self) -> str:
        path = self.workdir / "moto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def storing_in(server: S3Server, settings, prefix: str):
    """This test process's default storage on `server` under `prefix`, for the rest of the
    test (the `settings` fixture restores STORAGES; Django resets its storages when STORAGES
    changes, and FileFields follow `default_storage`)."""
    from evalserver.settings import s3_storage

    saved = {name: os.environ.get(name) for name in server.env(prefix)}
    os.environ.update(server.env(prefix))
    try:
        settings.STORAGES = {**settings.STORAGES, "default": s3_storage()}
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    yield
