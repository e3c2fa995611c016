"""Downloads of stored files with HTTP caching and resume: Range (one range), ETag,
If-Range, If-None-Match, Last-Modified, Accept-Ranges.

Three ways the bytes leave, chosen by what the storage can do:
- storage without local paths (S3 through django-storages): a redirect to a short-lived
  presigned URL (DOWNLOAD_URL_MAX_AGE_S); the object store answers Range itself;
- the filesystem with DOWNLOAD_OFFLOAD_HEADER set: an empty answer whose
  X-Accel-Redirect / X-Sendfile header tells the front proxy which file to send;
- otherwise Django streams the file from storage, seeking to the range's start, one chunk
  at a time (never the whole file in memory).
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import re
from collections.abc import Iterator
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import http_date, parse_http_date_safe
from django.utils.translation import gettext as _

from challenges.attachments import content_disposition
from challenges.services.storage import CHUNK, open_stored

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def storage_has_paths() -> bool:
    """Whether the storage keeps files at local paths (the filesystem) or not (S3)."""
    try:
        default_storage.path("probe")
    except NotImplementedError:
        return False
    return True


def _presigned_url(name: str) -> str:
    try:
        return default_storage.url(name, expire=settings.DOWNLOAD_URL_MAX_AGE_S)
    except TypeError:  # a storage whose url() takes no expiry
        return default_storage.url(name)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """(start, end inclusive) of a single satisfiable range; None when there is no usable
    Range header (absent, malformed or several ranges: the whole file is sent, as RFC 9110
    allows); False when the range cannot be satisfied (416)."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        n = int(last)
        if n == 0:
            return False
        return (max(size - n, 0), size - 1) if size else False
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size:
        return False
    if end < start:
        return None
    return start, min(end, size - 1)


def _read(name: str, start: int, length: int) -> Iterator[bytes]:
    with open_stored(name) as fh:
        if start:
            fh.seek(start)
        left = length
        while left > 0:
            data = fh.read(min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            yield data


def stored_file_response(
    request,
    *,
    name: str,
    filename: str,
    sha256: str = "",
    size: int | None = None,
) -> HttpResponse:
    """The stored file `name` (a path we chose), as an attachment called `filename`."""
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(filename),
    }
    if sha256:
        headers["ETag"] = f'"{sha256}"'
        headers["X-Content-SHA256"] = sha256
    if not storage_has_paths():
        kept = {k: v for k, v in headers.items() if k in ("ETag", "X-Content-SHA256")}
        return HttpResponseRedirect(
            _presigned_url(name), headers={**kept, "Cache-Control": "private, no-store"}
        )

    try:
        modified: dt.datetime = default_storage.get_modified_time(name)
        if size is None:
            size = default_storage.size(name)
    except FileNotFoundError:
        raise Http404(_("The file is no longer stored.")) from None
    last_modified = http_date(modified.timestamp())
    headers["Last-Modified"] = last_modified
    etag = headers.get("ETag") or f'W/"{size:x}-{int(modified.timestamp()):x}"'
    headers["ETag"] = etag
    headers["Cache-Control"] = "private, no-cache"
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"

    none_match = request.headers.get("If-None-Match")
    tags = {t.strip() for t in (none_match or "").split(",")}
    if none_match and (etag in tags or "*" in tags):
        return HttpResponse(status=304, headers=headers)

    wanted = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if wanted and if_range:
        # Resume only if the file is the one the client has the start of; else send it all.
        if if_range.startswith(('"', "W/")):
            same = if_range == etag and not etag.startswith("W/")
        else:
            since = parse_http_date_safe(if_range)
            same = since is not None and int(modified.timestamp()) <= since
        if not same:
            wanted = None
    span = parse_range(wanted, size)
    if span is False:
        response = HttpResponse(
            _("Range %(wanted)s is outside the file's %(size)s bytes.")
            % {"wanted": repr(wanted), "size": size},
            status=416,
            content_type="text/plain; charset=utf-8",
        )
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    start, end = span if span else (0, size - 1)
    length = max(end - start + 1, 0)

    offload = settings.DOWNLOAD_OFFLOAD_HEADER
    if offload:
        # The proxy reads the file and answers Range itself.
        if offload == "X-Accel-Redirect":
            headers[offload] = settings.DOWNLOAD_ACCEL_PREFIX.rstrip("/") + "/" + quote(name)
        else:
            headers[offload] = default_storage.path(name)
        return HttpResponse(content_type=content_type, headers=headers)

    response = StreamingHttpResponse(
        _read(name, start, length),
        status=206 if span else 200,
        content_type=content_type,
        headers={**headers, "Content-Length": str(length)},
    )
    if span:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response
