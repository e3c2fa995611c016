"""The one engine for files that arrive in parts: a part is streamed from a request body
into storage, never held in memory, and the parts are joined, in order, through sha256
into one temporary file for the service that takes the whole file.

Two protocols use it: tus uploads (`resumable.py`: parts cut from PATCH bodies, named in
the upload's row) and EvalAI's large uploads (`large_uploads.py`, an adapter that names
its parts by number and keeps its state in a signed id).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from challenges.services.storage import CHUNK, delete_quietly, open_stored


class PartReader:
    """At most `limit` bytes of a request body, read in chunks; `size` counts them, and
    `digest` (when given) is fed them.

    Stops early at the end of the body (a client that went away)."""

    def __init__(self, stream: IO[bytes], limit: int, digest=None):
        self.stream, self.limit, self.size, self.digest = stream, limit, 0, digest

    def read(self, n: int = -1) -> bytes:
        want = self.limit - self.size
        if n is not None and n >= 0:
            want = min(want, n)
        want = min(want, CHUNK)
        if want <= 0:
            return b""
        data = self.stream.read(want)
        self.size += len(data)
        if self.digest is not None:
            self.digest.update(data)
        return data


def part_store(name: str, stream: IO[bytes], limit: int, digest=None) -> tuple[str, int]:
    """Stream at most `limit` bytes of `stream` into storage as `name`; returns the name
    storage gave it and its size. A failed store leaves nothing behind."""
    part = PartReader(stream, limit, digest)
    try:
        saved = default_storage.save(name, File(part))
    except BaseException:
        delete_quietly([name])
        raise
    return saved, part.size


@dataclass(frozen=True)
class JoinedParts:
    file: IO[bytes]  # a temporary file, at its start; gone when the context ends
    size: int
    sha256: str


@contextmanager
def parts_joined(names: Iterable[str]) -> Iterator[JoinedParts]:
    """The stored parts `names`, in order, as one temporary file with its size and sha256
    (hashed while joining, so the service that takes it need not read it again)."""
    with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as joined:
        digest = hashlib.sha256()
        for name in names:
            with open_stored(name) as part:
                while chunk := part.read(CHUNK):
                    digest.update(chunk)
                    joined.write(chunk)
        joined.flush()
        size = joined.tell()
        joined.seek(0)
        yield JoinedParts(file=joined, size=size, sha256=digest.hexdigest())
