"""The real services a benchmark run uses, all of them its own and all removed at the end:
a PostgreSQL database, a Redis queue, storage folders and a Celery worker process.

Nothing here imports Django: the environment must be complete before django.setup().
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from evalserver.testing import CeleryWorker, ProcessStartError

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"


class BenchError(Exception):
    """The benchmark could not run; the message says why and what to do."""


def database_server_url() -> str:
    """DATABASE_URL from the environment (PostgreSQL only), default the local server."""
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if urlsplit(url).scheme not in {"postgres", "postgresql", "pgsql"}:
        raise BenchError(
            f"DATABASE_URL={url!r} is not PostgreSQL; the benchmarks need a PostgreSQL server "
            "(unset DATABASE_URL to use postgres://postgres@127.0.0.1:5432)."
        )
    return url


def broker_url() -> str:
    """CELERY_BROKER_URL from the environment (Redis only), default the local server."""
    url = os.environ.get("CELERY_BROKER_URL") or DEFAULT_BROKER_URL
    if urlsplit(url).scheme not in {"redis", "rediss"}:
        raise BenchError(
            f"CELERY_BROKER_URL={url!r} is not Redis; the benchmarks need a Redis server "
            "(unset CELERY_BROKER_URL to use redis://127.0.0.1:6379/0)."
        )
    return url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class ThrowawayDatabase:
    """`evalserver_bench_<random>` on the server of `server_url`, created through the
    server's `postgres` database and dropped again, connections and all."""

    server_url: str
    name: str = field(default_factory=lambda: f"evalserver_bench_{uuid.uuid4().hex[:10]}")

    @property
    def url(self) -> str:
        return with_database(self.server_url, self.name)

    def _admin(self):
        import psycopg2

        try:
            conn = psycopg2.connect(with_database(self.server_url, "postgres"), connect_timeout=5)
        except psycopg2.OperationalError as exc:
            raise BenchError(
                f"cannot reach PostgreSQL at {with_database(self.server_url, 'postgres')}: "
                f"{str(exc).strip().rstrip('.')}. Start it, or point DATABASE_URL at one."
            ) from exc
        conn.autocommit = True
        return conn

    def create(self) -> ThrowawayDatabase:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            conn.close()
        return self

    def drop(self) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                # FORCE (PostgreSQL 13+): a worker killed mid-run may still hold a connection.
                cur.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            conn.close()


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        raise BenchError(
            f"cannot reach Redis at {url}: {str(exc).rstrip('.')}. Start it, or point CELERY_BROKER_URL at one."
        ) from exc


def forget_queue(url: str, queue: str) -> None:
    """Remove what kombu keeps in Redis for a queue once nobody uses it."""
    import redis

    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


@dataclass
class Folders:
    """MEDIA_ROOT, EVALSERVER_VAR_DIR and EVALUATION_CACHE_DIR under one temporary folder.

    The sandbox runs as another user (uid 65534 when the worker is root) and must read the
    unpacked scripts and the stored files: every folder on the way is 0755, not mkdtemp's
    0700.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="evalserver-bench-")))

    def __post_init__(self) -> None:
        self.root.chmod(0o755)
        for path in (self.media, self.var, self.cache, self.logs):
            path.mkdir(mode=0o755, exist_ok=True)
            path.chmod(0o755)

    @property
    def media(self) -> Path:
        return self.root / "media"

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def bench_environment(
    *, database_url: str, broker: str, queue: str, folders: Folders
) -> dict[str, str]:
    """The variables both this process and the worker run with."""
    return {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        # The throttle counters in Redis, as docker-compose.yml keeps them (CACHE_URL), not
        # in the files a checkout without CACHE_URL falls back to.
        "CACHE_URL": broker,
        "CELERY_QUEUE": queue,
        "MEDIA_ROOT": str(folders.media),
        "EVALSERVER_VAR_DIR": str(folders.var),
        "EVALUATION_CACHE_DIR": str(folders.cache),
        "DJANGO_SETTINGS_MODULE": "evalserver.settings",
        # The leaderboard figures send requests to the app in process, as this host.
        "ALLOWED_HOSTS": os.environ.get("ALLOWED_HOSTS") or "localhost",
        # Production settings (DEBUG off: no query log) unless the caller chose otherwise.
        "DEBUG": os.environ.get("DEBUG", "false"),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
    }


@dataclass
class Worker(CeleryWorker):
    """The tests' worker launcher (evalserver.testing), serving only the run's queue; a
    worker that does not start is a BenchError."""

    node: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:6]}@%h")

    def start(self, timeout: float = 90) -> Worker:
        try:
            super().start(timeout)
        except ProcessStartError as exc:
            raise BenchError(str(exc)) from exc
        return self


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_and_children(pid: int) -> tuple[float, list[int]]:
    """CPU seconds of `pid` and of the children it has reaped, and its live children."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0, []
    fields = stat[stat.rindex(")") + 2 :].split()
    # utime, stime, cutime, cstime are fields 14-17 of the whole line (man 5 proc).
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / _TICK, [int(child) for child in children]


def _own_and_reaped(pid: int) -> tuple[float, float, list[int]]:
    """CPU seconds of `pid` itself, of the children it has reaped, and its live children."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0, 0.0, []
    fields = stat[stat.rindex(")") + 2 :].split()
    own = (int(fields[11]) + int(fields[12])) / _TICK
    reaped = (int(fields[13]) + int(fields[14])) / _TICK
    return own, reaped, [int(child) for child in children]


def worker_cpu_parts(root: int) -> dict[str, float]:
    """CPU seconds so far of a `celery worker` tree, by part: the main process (broker,
    hand-off to the pool), the pool processes (Django, the service calls), the warm
    parents (forking), and the sandboxed children (reaped by their warm parent). Reaped
    processes of the first three count where their parent is."""
    parts = {"worker_main": 0.0, "worker_pool": 0.0, "warm_parents": 0.0, "children": 0.0}
    own, reaped, pool = _own_and_reaped(root)
    parts["worker_main"] += own + reaped
    for pid in pool:
        own, reaped, parents = _own_and_reaped(pid)
        parts["worker_pool"] += own + reaped
        for parent in parents:
            own, reaped, live = _own_and_reaped(parent)
            parts["warm_parents"] += own
            parts["children"] += reaped + sum(tree_cpu_seconds(child) for child in live)
    return parts


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by `root` and every process under it (Linux only; 0 elsewhere).

    Processes that ended count once they are reaped, through their parent's cutime."""
    total, todo = 0.0, [root]
    while todo:
        cpu, children = _cpu_and_children(todo.pop())
        total += cpu
        todo.extend(children)
    return total


def postgres_cpu_seconds(database: str, *, leave_out: int | None = None) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving `database` on this
    machine (their process title names it), but the backend `leave_out`. Backends that
    ended are not counted."""
    total = 0.0
    for entry in Path("/proc").iterdir() if Path("/proc").exists() else []:
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        mine = title.startswith("postgres: ") and f" {database} " in title
        if mine and int(entry.name) != leave_out:
            total += _cpu_and_children(int(entry.name))[0]
    return total


def redis_cpu_seconds() -> float:
    """CPU seconds used so far by the redis-server processes on this machine."""
    total = 0.0
    for entry in Path("/proc").iterdir() if Path("/proc").exists() else []:
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == "redis-server":
                total += _cpu_and_children(int(entry.name))[0]
    return total


class CpuShares:
    """CPU seconds each part of the stack used between `start()` and `stop()`: the web
    server's tree, the worker's tree by part (`worker_cpu_parts`), the PostgreSQL backends
    of `database`, Redis, and this process (the clients and poller) with the backend of
    its own connection, `own_backend` (the poller's queries are the bench's, not the
    platform's)."""

    def __init__(
        self, *, web: int, worker: int, database: str, own_backend: int | None = None
    ) -> None:
        self.web, self.worker, self.database = web, worker, database
        self.own_backend = own_backend
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "web": tree_cpu_seconds(self.web),
            **worker_cpu_parts(self.worker),
            "postgres": postgres_cpu_seconds(self.database, leave_out=self.own_backend),
            "redis": redis_cpu_seconds(),
            "bench": own.ru_utime
            + own.ru_stime
            + (_cpu_and_children(self.own_backend)[0] if self.own_backend else 0.0),
        }

    def start(self) -> None:
        self.before = self._now()

    def stop(self) -> None:
        after = self._now()
        self.used = {name: after[name] - self.before[name] for name in after}
