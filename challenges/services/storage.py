"""Writing files into MEDIA_ROOT under names we choose, never names users send."""

from __future__ import annotations

import contextlib
import hashlib
import io
import zipfile
from collections.abc import Iterable
from typing import IO

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.utils.text import get_valid_filename

CHUNK = 1024 * 1024


def safe_basename(name: str, default: str = "file") -> str:
    """The last component of an untrusted name, reduced to safe characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        cleaned = get_valid_filename(base)
    except Exception:  # Django raises SuspiciousFileOperation for '', '.', '..'
        cleaned = ""
    return cleaned[:120] or default


def sha256_stream(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class _HashingReader(io.RawIOBase):
    """Wraps a stream so that whoever reads it to the end also computes its sha256."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.digest.update(data)
        self.size += n
        return n


def store_stream(*, folder: str, name: str, stream: IO[bytes]) -> tuple[str, str, int]:
    """Stream `stream` into storage under `folder/<safe name>`; returns (path, sha256, size).

    The content is read once, in chunks; it is never held whole in memory.
    """
    reader = _HashingReader(stream)
    path = default_storage.save(
        f"{folder}/{safe_basename(name)}", File(io.BufferedReader(reader, CHUNK))
    )
    return path, reader.digest.hexdigest(), reader.size


def open_stored(path: str) -> IO[bytes]:
    """A stored file, opened for reading; `path` is one we chose when storing it."""
    return default_storage.open(path, "rb")


def deterministic_zip(files: Iterable[tuple[str, bytes]]) -> bytes:
    """A zip whose bytes depend only on the (path, content) pairs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in sorted(files):
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def delete_quietly(paths: Iterable[str]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            default_storage.delete(path)
