"""The upload request of `realistic` in process, for profiling: the tabular starter's
400-row sample submission posted as the bench posts it (multipart, `Authorization: Token`)
straight into Django's WSGI handler, as gunicorn's worker thread calls it, with production
settings (DEBUG off), PostgreSQL and the Redis broker. Nothing consumes the queue: this is
the web part only, from the request to the 201 and the message handed to the broker.

    DATABASE_URL=postgres://.../evalserver_x CELERY_BROKER_URL=redis://127.0.0.1:6379/N \\
        python -m bench.profile_upload [--uploads 300] [--profile out.prof] [--top 15]

Prints, per upload: this process's CPU (getrusage), the database backend's CPU (its
/proc/<pid>/stat, when PostgreSQL runs on this machine) and the statements (with their
SQL, once); then cProfile's top items of a second pass. The database is used as it is
(migrated first): each run makes its own users, teams and challenge, and removes its
queue and files at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_upload")
    parser.add_argument("--uploads", type=int, default=300, help="per measured pass")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument(
        "--passes",
        type=int,
        default=5,
        help="measured passes; their least is the one "
        "the other processes of the machine disturbed least",
    )
    parser.add_argument("--profile", type=Path, help="keep cProfile's stats here")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--sort", default="tottime", help="cProfile order of the top items")
    parser.add_argument("--show-sql", action="store_true", help="print one upload's statements")
    parser.add_argument(
        "--gunicorn",
        action="store_true",
        help="instead: post over HTTP to gunicorn (run as `realistic` runs it: as "
        "docker-compose.yml does; 4 clients) and read its tree's CPU and the database's "
        "backends'",
    )
    args = parser.parse_args(argv)

    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        if not os.environ.get(name):
            parser.error(f"set {name} (your own database and Redis db)")
    folder = Path(tempfile.mkdtemp(prefix="profile-upload-"))
    queue = f"evalserver-profile-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        {
            "CELERY_QUEUE": queue,
            "MEDIA_ROOT": str(folder / "media"),
            "EVALSERVER_VAR_DIR": str(folder / "var"),
            "EVALUATION_CACHE_DIR": str(folder / "cache"),
            "DJANGO_SETTINGS_MODULE": "evalserver.settings",
            # What bench.upload.gunicorn runs the web process with.
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            # bench.services.bench_environment's: throttle counters in Redis, as in compose.
            "CACHE_URL": os.environ["CELERY_BROKER_URL"],
            "DEBUG": os.environ.get("DEBUG", "false"),
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            # One backend for the whole run, so its CPU is read from one /proc entry.
            "DB_CONN_MAX_AGE": "3600",
        }
    )
    try:
        return _run(args, queue)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(args, queue: str) -> int:
    import logging

    import django

    django.setup()
    logging.getLogger("challenges").setLevel(logging.WARNING)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)

    from bench.realistic import _arena, _teams
    from bench.scenario import Cast
    from challenges.services.teams import host_team_create

    suffix = uuid.uuid4().hex[:6]
    users = get_user_model()

    host = users.objects.create_user(f"prof-host-{suffix}", "h@profile.invalid", None)
    cast = Cast(
        host=host,
        admin=users.objects.create_superuser(f"prof-admin-{suffix}", "a@profile.invalid", None),
        participant=users.objects.create_user(f"prof-p-{suffix}", "p@profile.invalid", None),
        host_team=host_team_create(name=f"Profile hosts {suffix}", creator=host),
    )
    phase, body, _ = _arena(cast)
    tokens = _teams(cast, phase.challenge, count=8)
    path = f"/api/v1/challenges/{phase.challenge_id}/phases/{phase.codename}/submissions/"
    if args.gunicorn:
        try:
            return _over_gunicorn(args, path, body, tokens)
        finally:
            _drop_queue(queue)
    upload = Uploader(path, body)
    try:
        for i in range(args.warmup):
            upload(tokens[i % 8])

        # Statements: one upload's, with DEBUG's cursor wrapper on for it only.
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            upload(tokens[0])
        statements = len(captured.captured_queries)
        if args.show_sql:
            for q in captured.captured_queries:
                print(f"  sql: {q['sql'][:400]}")

        backend = _backend_pid(connection)
        cpu_ms, db_ms = [], []
        for _ in range(args.passes):  # the spread of the passes says how steady it is
            n = args.uploads // args.passes
            db0, cpu0 = _proc_cpu(backend), _cpu()
            for i in range(n):
                upload(tokens[i % 8])
            cpu_ms.append((_cpu() - cpu0) * 1000 / n)
            if backend is not None:
                db_ms.append((_proc_cpu(backend) - db0) * 1000 / n)

        # CPU time, not wall time: waiting for PostgreSQL or the disk is not this process's.
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for i in range(args.uploads):
            upload(tokens[i % 8])
        profiler.disable()
    finally:
        _drop_queue(queue)

    print(f"profile_upload: {args.uploads} uploads of {len(body)} bytes to {path}")
    for name, figures in (("web_cpu", cpu_ms), ("db_backend_cpu", db_ms)):
        if figures:
            print(
                f"{name}_ms_per_upload median {statistics.median(figures):.2f} least "
                f"{min(figures):.2f} (passes {', '.join(f'{c:.2f}' for c in figures)})"
            )
    print(f"statements_per_upload {statements}")
    if args.profile:
        profiler.dump_stats(args.profile)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())
    return 0


def _over_gunicorn(args, path: str, body: bytes, tokens: list[str]) -> int:
    from django.conf import settings

    from bench.realistic import PRODUCTION_WEB, _burst
    from bench.services import postgres_cpu_seconds, tree_cpu_seconds
    from bench.upload import free_port, gunicorn

    port = free_port()
    url = f"http://127.0.0.1:{port}{path}"
    database = settings.DATABASES["default"]["NAME"]
    log = Path(os.environ["EVALSERVER_VAR_DIR"]) / "gunicorn.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # The submit throttle (120 a minute per user) would refuse a long run from 4 users.
    os.environ["THROTTLE_SUBMIT_USER"] = "100000/minute"
    with gunicorn(port, log, **PRODUCTION_WEB) as web:
        _burst(url, tokens, body, count=args.warmup)
        web0, db0, t0 = tree_cpu_seconds(web), postgres_cpu_seconds(database), time.perf_counter()
        ids, _ = _burst(url, tokens, body, count=args.uploads)
        wall = time.perf_counter() - t0
        web_s, db_s = tree_cpu_seconds(web) - web0, postgres_cpu_seconds(database) - db0
    n = len(ids)
    print(f"profile_upload: {n} uploads of {len(body)} bytes over HTTP to gunicorn, {wall:.1f} s")
    print(f"gunicorn_cpu_ms_per_upload {web_s * 1000 / n:.2f}")
    print(f"postgres_cpu_ms_per_upload {db_s * 1000 / n:.2f}")
    return 0


class Uploader:
    """One upload as bench.realistic._Client sends it, into the WSGI handler."""

    def __init__(self, path: str, body: bytes) -> None:
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()
        self.path = path
        self.body = body

    def __call__(self, token: str) -> int:
        import json

        boundary = f"bench-{uuid.uuid4().hex}"
        data = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="submission.csv"\r\nContent-Type: text/csv\r\n\r\n'
            ).encode()
            + self.body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        environ = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": self.path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_CONNECTION": "keep-alive",
            "HTTP_ACCEPT_ENCODING": "identity",
            "HTTP_AUTHORIZATION": f"Token {token}",
            "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        status: list[str] = []
        response = self.handler(environ, lambda s, headers, exc_info=None: status.append(s))
        try:
            content = b"".join(response)
        finally:
            response.close()
        if not status[0].startswith("201"):
            raise RuntimeError(f"upload answered {status[0]}: {content[:300]!r}")
        return json.loads(content)["id"]


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _backend_pid(connection) -> int | None:
    connection.ensure_connection()
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def _proc_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drop_queue(queue: str) -> None:
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url)
        try:
            client.delete(queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9)))
        finally:
            client.close()


if __name__ == "__main__":
    started = time.perf_counter()
    status = main()
    print(f"profile_upload: {time.perf_counter() - started:.1f} s")
    raise SystemExit(status)
