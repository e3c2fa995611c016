"""A large submission through gunicorn and the REST API, as a participant's client sends it:
how fast it is accepted, and how much the web process's memory grows meanwhile.

DESIGN section 8: a 1 GiB upload may grow the web process's peak RSS by at most 64 MiB,
so the file must be streamed to storage, never read whole into memory. The peak is the
worker's VmHWM, reset (clear_refs) after a warm-up request, against its RSS just before.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.scenario import PHASE, Arena, Cast

# The phase accepts .txt: the body is digits, the kind of file a text check lets through.
UPLOAD_EVALUATE = '''\
def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    """Does not read the (large) submission: only the upload is measured."""
    return {"result": [{"main": {"Score": 1.0}}]}
'''
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UploadFigures:
    size_bytes: int
    seconds: float
    rss_before_kb: int
    peak_kb: int
    peak_reset: bool

    @property
    def growth_mib(self) -> float:
        return max(0, self.peak_kb - self.rss_before_kb) / 1024

    @property
    def mib_per_s(self) -> float:
        return self.size_bytes / CHUNK / self.seconds


def measure_upload(cast: Cast, *, size_bytes: int, log_path: Path) -> UploadFigures:
    from rest_framework.authtoken.models import Token

    arena = Arena.load(cast, UPLOAD_EVALUATE, title="Bench upload").approve_and_enter(cast)
    arena.phase.max_submission_size_bytes = size_bytes + CHUNK
    arena.phase.save(update_fields=["max_submission_size_bytes"])
    token = Token.objects.get_or_create(user=cast.participant)[0].key
    port = free_port()
    with gunicorn(port, log_path) as master:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        headers = {"Authorization": f"Token {token}"}
        worker, before, peak_reset = warm_web_worker(
            master, conn, f"/api/v1/challenges/{arena.challenge.pk}/", headers
        )
        started = time.perf_counter()
        status, body = _post_streamed(
            conn,
            f"/api/v1/challenges/{arena.challenge.pk}/phases/{PHASE}/submissions/",
            headers,
            size_bytes,
        )
        seconds = time.perf_counter() - started
        peak = _status_kb(worker, "VmHWM")
        conn.close()
    if status != 201:
        raise RuntimeError(f"the upload answered {status}: {body[:500]!r}")
    return UploadFigures(size_bytes, seconds, before, peak, peak_reset)


def _post_streamed(conn, url: str, headers: dict, size: int) -> tuple[int, bytes]:
    boundary = f"bench-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="submission.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn.putrequest("POST", url)
    for name, value in {
        **headers,
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(tail)),
    }.items():
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(head)
    chunk = (b"0123456789" * (CHUNK // 10 + 1))[:CHUNK]
    left = size
    while left:
        piece = chunk[: min(CHUNK, left)]
        conn.send(piece)
        left -= len(piece)
    conn.send(tail)
    response = conn.getresponse()
    return response.status, response.read()


@contextlib.contextmanager
def gunicorn(
    port: int, log_path: Path, *, workers: int = 1, threads: int = 1, access_log: bool = False
):
    """gunicorn serving this checkout; `access_log`: one line per request to its output, as
    docker-compose.yml and the Dockerfile run it (`--access-logfile -`)."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
    command += [
        "evalserver.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        "600",
        # Not the control socket in the home folder that every gunicorn shares.
        "--no-control-socket",
    ]
    if access_log:
        command += ["--access-logfile", "-"]
    with log_path.open("ab") as log:
        # Production settings behind no TLS proxy: plain HTTP on loopback.
        env = {**os.environ, "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false"}
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start; see {log_path}")
            time.sleep(0.1)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warm_web_worker(
    master: int, conn: http.client.HTTPConnection, path: str, headers: dict
) -> tuple[int, int, bool]:
    """One request to warm gunicorn's only worker, then what a memory figure needs of it:
    its pid, its RSS now (KiB), and whether its peak could be reset to that."""
    conn.request("GET", path, headers=headers)
    warm = conn.getresponse()
    warm.read()
    if warm.status != 200:
        raise RuntimeError(f"warm-up request answered {warm.status}")
    worker = _only_child(master)
    return worker, _status_kb(worker, "VmRSS"), _reset_peak(worker)


def _only_child(pid: int) -> int:
    """gunicorn's one worker: the master's child."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def _reset_peak(pid: int) -> bool:
    """Reset the peak RSS to the current RSS (Linux >= 4.0; needs owning the process)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def disk_has_room(folder: Path, size_bytes: int) -> bool:
    # The upload is stored once, plus Django's temporary file while it arrives.
    return shutil.disk_usage(folder).free > 3 * size_bytes
