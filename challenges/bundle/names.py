"""Member names and config paths inside a bundle: normalising them, refusing those that
would escape the bundle's folder, and showing them in messages. Part of `challenges.bundle`."""

from __future__ import annotations

import re
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable

from django.utils.translation import gettext as _

MIB = 1024**2
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_NAME_BYTES = 4096
# Files that operating systems sprinkle into archives; never part of a bundle.
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


def show(name: str, limit: int = 200) -> str:
    """A member name fit for an error message (control characters escaped, shortened)."""
    text = name if name.isprintable() else repr(name)[1:-1]
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"'{text}'"


def human_bytes(n: int | float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} GiB"  # pragma: no cover


def is_junk(name: str) -> bool:
    """macOS resource forks, Finder and Explorer droppings: ignored everywhere."""
    parts = name.split("/")
    base = parts[-1]
    return parts[0] == "__MACOSX" or base.startswith("._") or base in _JUNK_NAMES


_UTF8_FLAG = 0x800
_UNICODE_PATH_EXTRA = 0x7075  # Info-ZIP Unicode Path: a UTF-8 name beside the legacy one


def entry_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author typed it, in NFC.

    Python's zipfile decodes a name without the UTF-8 flag as cp437, the zip format's
    old default. Few tools mean cp437 today: macOS and 7-Zip write UTF-8 without the
    flag, and Windows' own "Send to > Compressed folder" on a Japanese system writes
    cp932 (Shift-JIS). So the name's bytes are recovered (cp437 maps all 256 of them)
    and read as the Info-ZIP Unicode Path extra field, UTF-8 or cp932, in that order,
    keeping cp437 when none fits. NFC makes a macOS name with combining marks (が as
    か + U+3099) the same name the config spells.
    """
    name = info.orig_filename
    if not info.flag_bits & _UTF8_FLAG:
        # Info-ZIP writes "?" for what the legacy name cannot hold: the field comes first.
        raw = name.encode("cp437")
        name = _unicode_path(info, raw) or (name if name.isascii() else _decode_legacy(raw))
    return unicodedata.normalize("NFC", name)


def _unicode_path(info: zipfile.ZipInfo, raw: bytes) -> str | None:
    extra, pos = info.extra, 0
    while pos + 4 <= len(extra):
        kind, size = struct.unpack("<HH", extra[pos : pos + 4])
        body = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
        # version 1, then the CRC-32 of the legacy name it stands for: a tool that
        # renamed the entry without updating the field leaves a stale name.
        if kind == _UNICODE_PATH_EXTRA and len(body) > 5 and body[0] == 1:
            if struct.unpack("<L", body[1:5])[0] != zlib.crc32(raw):
                return None
            try:
                return body[5:].decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def _decode_legacy(raw: bytes) -> str:
    for encoding in ("utf-8", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp437")


def check_name(raw: str) -> tuple[str, str | None]:
    """Normalise a member name; return (name, None) or (raw, why it is refused): a
    sentence with %(entry)s where the entry's name goes.

    Backslashes count as separators: Windows tools write them, and a `..\\` must
    not slip past a check that only splits on `/`.
    """
    if "\x00" in raw:
        return raw, _("Entry %(entry)s has a NUL character in its name; refusing the zip.")
    if len(raw.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        why = _("Entry %%(entry)s has a name longer than %(limit)s bytes; refusing the zip.")
        return raw, why % {"limit": _MAX_NAME_BYTES}
    name = unicodedata.normalize("NFC", raw.replace("\\", "/"))
    if name.startswith("/"):
        return raw, _("Entry %(entry)s is an absolute path; refusing the zip.")
    if _DRIVE.match(name):
        return raw, _("Entry %(entry)s is an absolute Windows path; refusing the zip.")
    parts = name.split("/")
    if ".." in parts:
        return raw, _(
            "Entry %(entry)s has a '..' component and would land outside the bundle's "
            "folder; refusing the zip."
        )
    is_dir = name.endswith("/")
    parts = [p for p in parts if p not in ("", ".")]
    normalised = "/".join(parts)
    return (normalised + "/" if is_dir and normalised else normalised), None


def normalise_relative(path: str) -> str | None:
    """A path from the config, relative to the config's folder; None if it escapes."""
    name = unicodedata.normalize("NFC", path.strip().replace("\\", "/"))
    if not name or name.startswith("/") or _DRIVE.match(name) or "\x00" in name:
        return None
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts) or None


def sorted_names(names: Iterable[str], limit: int = 8) -> str:
    items = sorted(names)
    text = ", ".join(items[:limit])
    if len(items) <= limit:
        return text
    return _("%(names)s and %(count)s more") % {"names": text, "count": len(items) - limit}
