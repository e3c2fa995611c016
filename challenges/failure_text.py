"""What a participant reads of a failed evaluation.

The worker stores the failure message as the host's script produced it: an exception's
text may quote server paths (the unpacked script under the worker's cache, MEDIA_ROOT,
the interpreter's site-packages), traceback frames or a whole file's worth of data. Hosts
and admins read it whole; everything shown to a participant goes through
`participant_failure_text`, so there is one place that decides what leaves.

It is built from what is allowed, not by removing what is known to be bad: the failure
class is shown apart (`Submission.failure_kind`); of the message, traceback headers,
frames and their source lines are dropped, and every token left is either plain text
(no slash, no backslash), an http(s) link, a ratio such as `3/4` or a pair such as
`and/or`; anything else that looks like a path, in any spelling (URL schemes, drive
letters, UNC shares, quoted names with spaces, relative `../`), becomes `<path>`,
keeping at most its last component (`<path>/main.py`). The host's own folders are
replaced first wherever they appear, whatever precedes or follows them. Pure text
handling, no ORM; tests/security/test_failure_text.py holds the table of shapes.
"""

from __future__ import annotations

import os
import re
import site
import sys
from collections.abc import Iterable

MAX_PARTICIPANT_CHARS = 1000
PATH = "<path>"

# A traceback frame line, quoted either way ("File "/srv/.../main.py", line 12, in f"),
# or the source line printed under it: host code, never for participants.
_FRAME = re.compile(r"""^\s*File (?:"[^"\n]*"|'[^'\n]*'|\S+), line \d+""")
_TRACEBACK_HEADER = re.compile(r"^\s*Traceback \(most recent call last\):\s*$")

# Placeholders for what is already decided (kept links, replaced paths) while the other
# rules run: private-use characters that no rule matches.
_OPEN, _CLOSE = "\ue000", "\ue001"
_HELD = re.compile(f"{_OPEN}(\\d+){_CLOSE}")

# One component of a path: no whitespace, separators, quotes or brackets.
_SEG = r"""[^\s/\\"'`<>|(){}\[\],;]"""
_SEP = r"[/\\]+"
# After a path, up to three space-separated words that lead to another separator are
# still the path ("/srv/my data/x.csv"): over-redacting a word beats leaking a folder.
_MORE = rf"(?:(?: {_SEG}+){{1,3}}{_SEP}(?:{_SEG}+(?:{_SEP})?)*)*"
_HTTP = re.compile(r"""https?://[^\s"'`<>]+""", re.IGNORECASE)
# A quoted string that starts like a path: all of it, spaces included, is the path.
_QUOTED = re.compile(
    r"""(?P<q>["'])(?P<body>(?:[A-Za-z][\w+.-]*:/|[A-Za-z]:[/\\]|~|\.{1,2}[/\\]|\\\\|/)[^"'\n]*)(?P=q)"""
)
_SCHEME_URL = re.compile(rf"[A-Za-z][\w+.-]*://+(?:{_SEG}+(?:{_SEP})?)*{_MORE}")
# Two components at least; a lone "/tmp" is left to the token check below, so that
# "3/4 and/or" is not read as "/4 and/or".
_ABSOLUTE = re.compile(rf"/+{_SEG}+(?:{_SEP}{_SEG}*)+{_MORE}")
# A drive letter not glued to a word ("key:/srv" is a scheme-like prefix and a POSIX path).
_DRIVE = re.compile(rf"(?<![A-Za-z0-9])[A-Za-z]:{_SEP}(?:{_SEG}+(?:{_SEP})?)*{_MORE}")
_UNC = re.compile(rf"\\\\+{_SEG}+(?:{_SEP}{_SEG}*)*{_MORE}")
_RELATIVE = re.compile(rf"(?<![\w.])(?:\.{{1,2}}|~{_SEG}*){_SEP}(?:{_SEG}+(?:{_SEP})?)*{_MORE}")
_BASENAME = re.compile(r"[\w.-]{1,100}")
# Tokens with a separator that may stay: a ratio (3/4, 0.5/1) or two words (and/or).
_ALLOWED_SLASHED = re.compile(
    r"[(\[]?(?:\d+(?:\.\d+)?/\d+(?:\.\d+)?|[A-Za-z]+/[A-Za-z]+)[)\].,;:!?]*"
)


def host_folders() -> list[str]:
    """Folders of this host whose names must never reach a participant: the media root,
    the worker's cache, the var folder, the checkout, the interpreter's prefixes and
    site-packages, and an object store's endpoint. Read per call (tests change them)."""
    found: list[object] = [sys.prefix, sys.base_prefix, sys.exec_prefix]
    # Some virtualenvs' site module lacks getsitepackages.
    found += getattr(site, "getsitepackages", list)()
    try:
        from django.conf import settings

        for name in (
            "MEDIA_ROOT",
            "EVALUATION_CACHE_DIR",
            "VAR_DIR",
            "BASE_DIR",
            "STATIC_ROOT",
            "FILE_UPLOAD_TEMP_DIR",
        ):
            found.append(getattr(settings, name, None))
        storage = getattr(settings, "STORAGES", {}).get("default", {})
        found.append(storage.get("OPTIONS", {}).get("endpoint_url"))
    except ImportError:
        pass
    return [str(f) for f in found if f]


def _variants(folders: Iterable[str]) -> list[str]:
    out = set()
    for folder in folders:
        for form in (folder, os.path.realpath(folder) if "://" not in folder else folder):
            form = form.rstrip("/\\")
            # "/" or "/srv" alone would eat ordinary words; such folders are caught by the
            # path rules anyway.
            deep = form.count("/") + form.count("\\") >= 2 or re.match(r"[A-Za-z]:[/\\]", form)
            if len(form) >= 5 and deep:
                out.add(form)
    return sorted(out, key=len, reverse=True)


class _Scrubber:
    def __init__(self, folders: Iterable[str]):
        self.held: list[str] = []
        self.folders = _variants(folders)

    def hold(self, text: str) -> str:
        self.held.append(text)
        return f"{_OPEN}{len(self.held) - 1}{_CLOSE}"

    def path(self, matched: str) -> str:
        # Punctuation after a path ("main.py: bad row") is the sentence's, not the path's.
        trail = re.search(r"[:.,;!?]*$", matched).group()
        matched = matched[: len(matched) - len(trail)]
        last = re.split(r"[/\\]+", matched.rstrip("/\\ "))[-1]
        last = last.rsplit(" ", 1)[-1]
        keep = last if _BASENAME.fullmatch(last) and last not in (".", "..") else ""
        return self.hold(f"{PATH}/{keep}" if keep else PATH) + trail

    def line(self, text: str) -> str:
        for folder in self.folders:
            # Whatever is glued to it, the folder becomes a path the rules below replace
            # whole with what follows it.
            text = text.replace(folder, "/\ue002/\ue002")
        text = _HTTP.sub(lambda m: self.hold(m.group()), text)
        text = _QUOTED.sub(lambda m: m["q"] + self.path(m["body"]) + m["q"], text)
        for rule in (_SCHEME_URL, _UNC, _DRIVE, _RELATIVE, _ABSOLUTE):
            text = rule.sub(lambda m: self.path(m.group()), text)
        tokens = re.split(r"(\s+)", text)
        text = "".join(
            self.hold(PATH)
            if ("/" in t or "\\" in t or "\ue002" in t) and not _ALLOWED_SLASHED.fullmatch(t)
            else t
            for t in tokens
        )
        return _HELD.sub(lambda m: self.held[int(m.group(1))], text)


def participant_failure_text(
    message: str, *, limit: int = MAX_PARTICIPANT_CHARS, folders: Iterable[str] | None = None
) -> str:
    """`message` fit for the team that submitted: no traceback frames, no paths, at
    most `limit` characters (the cut is marked, so nobody mistakes it for the whole).
    `folders`: the host's folders to replace (default: `host_folders()`)."""
    if not message:
        return ""
    scrubber = _Scrubber(host_folders() if folders is None else folders)
    lines = []
    skip_source = False
    for line in message.splitlines():
        if _TRACEBACK_HEADER.match(line):
            continue
        if _FRAME.match(line):
            # The next indented line is the frame's source line: host code.
            skip_source = True
            continue
        if skip_source and line.startswith((" ", "\t")):
            skip_source = False
            continue
        skip_source = False
        lines.append(scrubber.line(line))
    text = "\n".join(lines).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
