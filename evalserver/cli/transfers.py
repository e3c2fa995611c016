"""Resumable transfers for `evalserver-cli`: downloads continued with Range/If-Range and
sha256-checked, uploads over tus continued from the server's offset."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import requests

from evalserver.cli.api import CHUNK, Api, CliError, _detail


def _sha256_file(path: Path):
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest


def download_resumable(api: Api, path: str, target: Path, *, size: int, sha256: str) -> int:
    """Download to `target`, continuing a partial file with Range/If-Range; the result's
    sha256 is checked. Returns the byte it resumed at (0: from the start)."""
    have = target.stat().st_size if target.exists() else 0
    if have == size and _sha256_file(target).hexdigest() == sha256:
        return have  # complete already
    if have >= size:
        have = 0  # longer, or as long but different: not a prefix of this file
    headers = {}
    if have:
        # If-Range: the rest only if the server's file is still the one we have the start of.
        headers = {"Range": f"bytes={have}-", "If-Range": f'"{sha256}"'}
    response = api.call("GET", path, stream=True, headers=headers, timeout=None)
    if response.status_code == 206:
        digest = _sha256_file(target)
        mode = "ab"
    else:
        digest, mode, have = hashlib.sha256(), "wb", 0
    with target.open(mode) as fh:
        for chunk in response.iter_content(CHUNK):
            digest.update(chunk)
            fh.write(chunk)
    if digest.hexdigest() != sha256:
        target.unlink(missing_ok=True)
        raise CliError(f"{target}: sha256 does not match the server's; download it again")
    return have


# ---------------------------------------------------------------- resumable uploads (tus)


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evalserver"
    return Path(os.environ.get("EVALSERVER_CACHE_DIR") or default)


class _Slice:
    """`length` bytes of an open file from its current position, read as requests sends
    them (a known Content-Length, never the whole slice in memory)."""

    def __init__(
        self, fh: IO[bytes], length: int, progress=None, done: int = 0, total: int = 0
    ) -> None:
        self.fh, self.left, self.progress = fh, length, progress
        self.length, self.done, self.total = length, done, total

    def __len__(self) -> int:
        return self.length

    def read(self, n: int = -1) -> bytes:
        want = min(self.left, CHUNK if n is None or n < 0 else n)
        data = self.fh.read(want) if want > 0 else b""
        self.left -= len(data)
        self.done += len(data)
        if data and self.progress is not None:
            self.progress(self.done, self.total)
        return data


def tus_metadata(values: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(str(value).encode()).decode()}"
        for key, value in values.items()
        if value is not None
    )


def upload_resumable(
    api: Api,
    file: Path,
    meta: dict[str, str],
    *,
    progress,
    part_bytes: int = 32 * 1024 * 1024,
    retries: int = 5,
) -> dict:
    """Upload `file` with the server's tus endpoint, resuming an earlier attempt of the same
    file (same server, path, size and mtime: the state file under cache_dir()), and retrying
    dropped connections from the offset the server reports. Returns what finishing made."""
    stat = file.stat()
    key = hashlib.sha256(
        json.dumps([api.url, str(file.resolve()), stat.st_size, stat.st_mtime_ns, meta]).encode()
    ).hexdigest()[:32]
    state_path = cache_dir() / "uploads" / f"{key}.json"
    state: dict = {}
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text())
        except ValueError:
            state = {}
    tus = {"Tus-Resumable": "1.0.0"}
    offset = None
    if state.get("url"):
        head = api.session.head(state["url"], headers=tus, timeout=60)
        if head.status_code == 200:
            offset = int(head.headers["Upload-Offset"])
            print(f"resuming upload at byte {offset} of {stat.st_size}", file=sys.stderr)
        else:
            state = {}  # swept, finished elsewhere or another server: start again
    if offset is None:
        sha = state.get("sha256") or _sha256_file(file).hexdigest()
        created = api.call(
            "POST",
            "uploads/",
            headers={
                **tus,
                "Upload-Length": str(stat.st_size),
                "Upload-Metadata": tus_metadata({**meta, "filename": file.name, "sha256": sha}),
            },
        )
        # The path only: behind a proxy the server may not know the scheme and host the
        # client used.
        path = urlsplit(created.headers["Location"]).path
        state = {"url": api.url + path[path.index("/api/v1/") :], "sha256": sha}
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(state))
        offset = 0
    failures = 0
    with file.open("rb") as fh:
        while offset < stat.st_size:
            length = min(part_bytes, stat.st_size - offset)
            fh.seek(offset)
            # tus checksum: the server keeps this PATCH only if its bytes arrive unchanged.
            piece, digest = _Slice(fh, length), hashlib.sha256()
            while chunk := piece.read():
                digest.update(chunk)
            checksum = base64.b64encode(digest.digest()).decode()
            fh.seek(offset)
            body = _Slice(fh, length, progress, offset, stat.st_size)
            try:
                response = api.session.patch(
                    state["url"],
                    data=body,
                    headers={
                        **tus,
                        "Upload-Offset": str(offset),
                        "Upload-Checksum": f"sha256 {checksum}",
                        "Content-Type": "application/offset+octet-stream",
                    },
                    timeout=None,
                )
            except requests.RequestException as exc:
                response, reason = None, str(exc)
            if response is not None:
                if response.status_code == 204:
                    offset, failures = int(response.headers["Upload-Offset"]), 0
                    continue
                reason = f"{response.status_code} {_detail(response)}"
                # 409: another offset than ours; 460: the bytes were damaged on the way.
                if response.status_code < 500 and response.status_code not in (409, 460):
                    raise CliError(f"PATCH {state['url']}: {reason}")
            failures += 1
            if failures > retries:
                raise CliError(
                    f"the upload stopped at byte {offset} ({reason}); run the same command "
                    "again to resume"
                )
            time.sleep(min(2**failures * 0.25, 10))
            head = api.session.head(state["url"], headers=tus, timeout=60)
            if head.status_code != 200:
                raise CliError(f"HEAD {state['url']}: {head.status_code}; submit again")
            offset = int(head.headers["Upload-Offset"])
    progress(stat.st_size, stat.st_size)
    finished = api.call("POST", state["url"].split("/api/v1/", 1)[1] + "finish/", headers=tus)
    state_path.unlink(missing_ok=True)
    return finished.json()
