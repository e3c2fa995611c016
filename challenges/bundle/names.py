"""Member names and config paths inside a bundle: normalising them, refusing those that
would escape the bundle's folder, and showing them in messages. Part of `challenges.bundle`."""

from __future__ import annotations

import re
from collections.abc import Iterable

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


def check_name(raw: str) -> tuple[str, str | None]:
    """Normalise a member name; return (name, None) or (raw, why it is refused).

    Backslashes count as separators: Windows tools write them, and a `..\\` must
    not slip past a check that only splits on `/`.
    """
    if "\x00" in raw:
        return raw, "has a NUL character in its name"
    if len(raw.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        return raw, f"has a name longer than {_MAX_NAME_BYTES} bytes"
    name = raw.replace("\\", "/")
    if name.startswith("/"):
        return raw, "is an absolute path"
    if _DRIVE.match(name):
        return raw, "is an absolute Windows path"
    parts = name.split("/")
    if ".." in parts:
        return raw, "has a '..' component and would land outside the bundle's folder"
    is_dir = name.endswith("/")
    parts = [p for p in parts if p not in ("", ".")]
    normalised = "/".join(parts)
    return (normalised + "/" if is_dir and normalised else normalised), None


def normalise_relative(path: str) -> str | None:
    """A path from the config, relative to the config's folder; None if it escapes."""
    name = path.strip().replace("\\", "/")
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
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")
