"""Resumable transfers through gunicorn: a large submission sent with the tus protocol
(dropped once at half and resumed from the server's offset), then downloaded back whole,
and again resumed with Range/If-Range.

upload_resumable_1gib_rss_mib (target <= 64, DESIGN section 8): the web worker's peak RSS
(VmHWM, reset after a warm-up request) minus its RSS before, over creation, every PATCH,
the drop, HEAD, the rest, and finishing (join, sha256, submission_create).
download_1gib_s: seconds for the whole file to come back through
/api/v1/submissions/<id>/file/ (scaled to 1 GiB when the run uses a smaller file).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from dataclasses import dataclass
from pathlib import Path

from bench.scenario import PHASE, Arena, Cast
from bench.upload import (
    CHUNK,
    UPLOAD_EVALUATE,
    _reset_peak,
    _status_kb,
    free_port,
    gunicorn,
    warm_web_worker,
)
from evalserver.cli.transfers import tus_metadata

PATCH_BYTES = 256 * CHUNK
GIB = 1024**3


@dataclass(frozen=True)
class TransferFigures:
    size_bytes: int
    upload_s: float
    upload_growth_mib: float
    dropped_at: int
    resumed_at: int
    download_s: float
    download_growth_mib: float
    resumed_download_ok: bool
    peak_reset: bool

    @property
    def download_1gib_s(self) -> float:
        return self.download_s * GIB / self.size_bytes


def _content_chunk() -> bytes:
    return (b"0123456789" * (CHUNK // 10 + 1))[:CHUNK]


def _content(offset: int, size: int):
    """The file's bytes from `offset`, `size` of them: byte i is chunk[i % CHUNK]."""
    chunk = _content_chunk()
    while size:
        start = offset % CHUNK
        piece = chunk[start : start + min(CHUNK - start, size)]
        yield piece
        offset += len(piece)
        size -= len(piece)


def _sha256_of(size: int) -> str:
    digest = hashlib.sha256()
    for piece in _content(0, size):
        digest.update(piece)
    return digest.hexdigest()


def _patch(port: int, path: str, headers: dict, offset: int, length: int, *, send: int) -> int:
    """PATCH `length` bytes at `offset`, but send only `send` of them (a drop when less);
    returns the offset the server answered, or -1 when the connection was dropped."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.putrequest("PATCH", path)
    for name, value in {
        **headers,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(length),
    }.items():
        conn.putheader(name, value)
    conn.endheaders()
    for piece in _content(offset, send):
        conn.send(piece)
    if send < length:
        conn.close()  # the network gives out
        return -1
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 204:
        raise RuntimeError(f"PATCH at {offset} answered {response.status}")
    return int(response.getheader("Upload-Offset"))


def _request(port: int, method: str, path: str, headers: dict) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request(method, path, headers=headers)
    return conn.getresponse()


def measure_transfers(cast: Cast, *, size_bytes: int, log_path: Path) -> TransferFigures:
    from rest_framework.authtoken.models import Token

    arena = Arena.load(cast, UPLOAD_EVALUATE, title="Bench resumable").approve_and_enter(cast)
    arena.phase.max_submission_size_bytes = size_bytes + CHUNK
    arena.phase.save(update_fields=["max_submission_size_bytes"])
    token = Token.objects.get_or_create(user=cast.participant)[0].key
    auth = {"Authorization": f"Token {token}", "Tus-Resumable": "1.0.0"}
    sha = _sha256_of(size_bytes)
    port = free_port()
    with gunicorn(port, log_path) as master:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        worker, before, peak_reset = warm_web_worker(
            master, conn, f"/api/v1/challenges/{arena.challenge.pk}/", auth
        )
        conn.close()
        started = time.perf_counter()
        meta = {
            "kind": "submission",
            "challenge": arena.challenge.pk,
            "phase": PHASE,
            "filename": "submission.txt",
            "sha256": sha,
        }
        created = _request(
            port,
            "POST",
            "/api/v1/uploads/",
            {**auth, "Upload-Length": str(size_bytes), "Upload-Metadata": tus_metadata(meta)},
        )
        body = created.read()
        if created.status != 201:
            raise RuntimeError(f"creating the upload answered {created.status}: {body[:300]!r}")
        path = "/api/v1/uploads/" + json.loads(body)["id"] + "/"
        offset, dropped_at, resumed_at = 0, -1, -1
        while offset < size_bytes:
            length = min(PATCH_BYTES, size_bytes - offset)
            if dropped_at < 0 and offset + length > size_bytes // 2:
                # Half way, the connection drops 40% into this request's body.
                _patch(port, path, auth, offset, length, send=length * 2 // 5)
                dropped_at = offset + length * 2 // 5
                time.sleep(0.5)  # the server notices the end of the body
                head = _request(port, "HEAD", path, auth)
                head.read()
                offset = resumed_at = int(head.getheader("Upload-Offset"))
                continue
            offset = _patch(port, path, auth, offset, length, send=length)
        finished = _request(port, "POST", path + "finish/", auth)
        result = finished.read()
        if finished.status != 201:
            raise RuntimeError(f"finishing answered {finished.status}: {result[:300]!r}")
        upload_s = time.perf_counter() - started
        upload_peak = _status_kb(worker, "VmHWM")
        submission = json.loads(result)["submission"]

        # Download it back whole, then the second half again as a resumed download.
        file_path = f"/api/v1/submissions/{submission}/file/"
        before_download = _status_kb(worker, "VmRSS")
        _reset_peak(worker)
        started = time.perf_counter()
        whole = _request(port, "GET", file_path, auth)
        received = 0
        while data := whole.read(CHUNK):
            received += len(data)
        download_s = time.perf_counter() - started
        download_peak = _status_kb(worker, "VmHWM")
        if whole.status != 200 or received != size_bytes:
            raise RuntimeError(f"download answered {whole.status} with {received} bytes")
        etag = whole.getheader("ETag")
        half = size_bytes // 2
        rest = _request(
            port, "GET", file_path, {**auth, "Range": f"bytes={half}-", "If-Range": etag}
        )
        digest = hashlib.sha256()
        for piece in _content(0, half):  # the first half, as the client has it on disk
            digest.update(piece)
        while data := rest.read(CHUNK):
            digest.update(data)
        resumed_ok = rest.status == 206 and digest.hexdigest() == sha
    return TransferFigures(
        size_bytes=size_bytes,
        upload_s=upload_s,
        upload_growth_mib=max(0, upload_peak - before) / 1024,
        dropped_at=dropped_at,
        resumed_at=resumed_at,
        download_s=download_s,
        download_growth_mib=max(0, download_peak - before_download) / 1024,
        resumed_download_ok=resumed_ok,
        peak_reset=peak_reset,
    )
