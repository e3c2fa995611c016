"""Files people download: names in any script in Content-Disposition, and CSV that
Japanese Excel opens without mojibake.

Pages and the API both answer downloads through these, so a challenge, phase or file
named in Japanese (or with emoji, full-width forms, combining marks) arrives under that
name in every browser, and an old client still gets a readable ASCII name.
"""

from __future__ import annotations

import io
import re
import unicodedata
from urllib.parse import quote

from django.http import HttpResponse

from challenges.csv_safe import csv_writer

# Excel reads a CSV without a byte-order mark in the system's code page (cp932 on a
# Japanese Windows): UTF-8 names turn into mojibake. With the BOM it reads UTF-8.
EXCEL_BOM = "\ufeff"
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9._+()\[\]-]+")


def ascii_fallback(filename: str) -> str:
    """An ASCII stand-in for `filename` (RFC 6266's filename=, for clients that ignore
    filename*): accents dropped, other characters as "_", the extension kept."""
    stem, dot, suffix = filename.rpartition(".")
    if not dot:
        stem, suffix = filename, ""
    folded = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = _UNSAFE_ASCII.sub("_", folded).strip("_-. ") or "download"
    suffix = _UNSAFE_ASCII.sub("", suffix)
    return f"{stem}.{suffix}" if suffix else stem


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """`attachment; filename="..."` with, when the name is not plain ASCII, RFC 5987's
    `filename*=UTF-8''...` beside the fallback (RFC 6266 section 4.3)."""
    kind = "inline" if inline else "attachment"
    filename = unicodedata.normalize("NFC", filename.replace("\r", "").replace("\n", ""))
    fallback = ascii_fallback(filename) if not filename.isascii() else filename
    fallback = fallback.replace("\\", "\\\\").replace('"', '\\"')
    header = f'{kind}; filename="{fallback}"'
    if not filename.isascii():
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def wants_excel(request) -> bool:
    """`?excel=1`: the spreadsheet variant of a CSV download."""
    return request.GET.get("excel") in ("1", "true", "yes")


def csv_response(text: str, filename: str, *, excel: bool = False) -> HttpResponse:
    """A CSV download; `excel` starts it with the UTF-8 byte-order mark Excel needs."""
    body = (EXCEL_BOM + text) if excel else text
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition(filename)
    return response


def rows_csv_response(request, rows: list[dict], columns: list[str], name: str) -> HttpResponse:
    """Rows as a formula-safe CSV download (challenges.csv_safe), for Excel when asked."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c) for c in columns])
    return csv_response(out.getvalue(), name, excel=wants_excel(request))
