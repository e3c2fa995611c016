"""Real processes for the operator drills: a PostgreSQL cluster of a drill's own (so it can
be stopped without touching the machine's shared server), gunicorn and `manage.py`
commands run as an operator runs them, each with the environment it is given."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import ROOT, spare_port, wait_until_ready

POSTGRES_BINARIES = sorted(
    Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
)
# PostgreSQL refuses to run as root: the cluster belongs to this OS user.
POSTGRES_USER = "postgres"


def postgres_bin(name: str) -> str:
    """Debian's server binaries (initdb, pg_ctl), newest version; not on PATH."""
    for folder in reversed(POSTGRES_BINARIES):
        if (folder / name).exists():
            return str(folder / name)
    raise FileNotFoundError(f"{name} not found under /usr/lib/postgresql/*/bin")


def postgres_cluster_available() -> bool:
    try:
        postgres_bin("initdb"), postgres_bin("pg_ctl")
    except FileNotFoundError:
        return False
    return shutil.which("runuser") is not None and _user_exists(POSTGRES_USER)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclass
class PostgresCluster:
    """A throwaway PostgreSQL cluster on a spare 127.0.0.1 port, trust authentication.

    `stop()` then `start()` is a real server restart: every connection is cut and nothing
    answers in between. Its folder is made with mkdtemp (pytest's folders are 0700 root,
    which the postgres user could not enter) and removed by `destroy()`.
    """

    port: int = field(default_factory=spare_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="evalserver-pg-")))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["runuser", "-u", POSTGRES_USER, "--", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}\n{self.log()}"
            )
        return done

    def init(self) -> PostgresCluster:
        shutil.chown(self.root, POSTGRES_USER, POSTGRES_USER)
        self._as_postgres(
            postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        return self

    def start(self) -> PostgresCluster:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            # A drill, not a benchmark of the disk; a fast stop still writes everything out.
            "-c fsync=off -c full_page_writes=off -c max_connections=60"
        )
        self._as_postgres(
            postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_path),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(
            postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"
        )

    def running(self) -> bool:
        done = subprocess.run(
            ["runuser", "-u", POSTGRES_USER, "--", postgres_bin("pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
        )  # fmt: skip
        return done.returncode == 0

    def createdb(self, name: str, template: str | None = None) -> str:
        copy = ["-T", template] if template else []
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", *copy, name],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url(name)

    def dropdb(self, name: str) -> None:
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "--force", name],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.data.exists() and self.running():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of one query on a fresh connection (the test process's Django connection is
    the suite's own database, not a drill's)."""
    import psycopg2

    with contextlib.closing(psycopg2.connect(url, connect_timeout=5)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


# ---------------------------------------------------------------- evalserver's own commands


def manage(env: dict[str, str], *args: str, cwd: Path = ROOT, timeout: float = 300) -> str:
    """`python manage.py ARGS` of the checkout `cwd`, with `env`; its stdout, or
    AssertionError with its output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_shell(command: str, *, env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    """One command line exactly as an operator types it (bash, `env` exported)."""
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Gunicorn:
    """gunicorn serving evalserver with production settings (DEBUG off) on a spare port."""

    env: dict[str, str]
    log_path: Path
    # Another checkout (a previous release's); its PYTHONPATH is in `env`.
    cwd: Path = ROOT
    workers: int = 2
    threads: int = 4
    port: int = field(default_factory=spare_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Gunicorn:
        env = {
            **self.env,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "gunicorn"),
                    "evalserver.wsgi",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    str(self.workers),
                    "--threads",
                    str(self.threads),
                    "--timeout",
                    "120",
                    "--access-logfile",
                    "-",
                ],  # fmt: skip
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            with urllib.request.urlopen(self.url + "/healthz", timeout=5) as answer:  # noqa: S310
                return answer.status == 200

        wait_until_ready(self.proc, ready, lambda: self.log()[-3000:], "gunicorn", timeout)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)


def http(method: str, url: str, *, token: str | None = None, body: dict | None = None,
         files: dict[str, tuple[str, bytes]] | None = None, timeout: float = 30):  # fmt: skip
    """(status, headers, body bytes) of one request; no exception for an HTTP error."""
    headers = {"Accept": "application/json"}
    data = None
    if token:
        headers["Authorization"] = f"Token {token}"
    if files is not None:
        boundary = f"----drill{time.monotonic_ns()}"
        parts = []
        for name, value in (body or {}).items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
        for name, (filename, content) in files.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode()
                + content
                + b"\r\n"
            )
        data = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def api_json(method: str, url: str, **kwargs):
    status, _headers, content = http(method, url, **kwargs)
    assert 200 <= status < 300, f"{method} {url}: {status} {content[:2000]!r}"
    return json.loads(content) if content else None


@dataclass
class Beat:
    """`celery -A evalserver beat`: the schedule that runs the sweeper, as production has it."""

    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen | None = None

    def start(self) -> Beat:
        with (self.workdir / "beat.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "evalserver",
                    "beat",
                    "--loglevel=INFO",
                    "-s",
                    str(self.workdir / "beat-schedule"),
                ],  # fmt: skip
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_together(*processes) -> None:
    """Start processes side by side (each `.start()` waits until it is ready): two cores
    shared by everything, and most of a start is waiting on imports."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(processes)) as pool:
        for started in [pool.submit(p.start) for p in processes]:
            started.result()
