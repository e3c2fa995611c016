"""What a participant reads of a failed evaluation.

The worker stores the failure message as the host's script produced it: an exception's
text may quote server paths (the unpacked script under the worker's cache), traceback
frames or a whole file's worth of data. Hosts and admins read it whole; everything shown
to a participant goes through `participant_failure_text`, so there is one place that
decides what leaves. Pure text handling, no ORM, unit-tested on its own.
"""

from __future__ import annotations

import re

MAX_PARTICIPANT_CHARS = 1000

# A traceback frame line ("File "/srv/.../main.py", line 12, in evaluate") or the source
# line printed under it: host code, never for participants.
_FRAME = re.compile(r'^\s*File "[^"]*", line \d+.*$', re.MULTILINE)
_TRACEBACK_HEADER = re.compile(r"^\s*Traceback \(most recent call last\):\s*$", re.MULTILINE)
# An absolute POSIX path of two or more parts (`/srv/var/cache/x.py`), or a home-relative
# one, wherever it appears in the text. One-part paths (`/tmp`, "a/b" ratios) stay: they
# name nothing of the server's layout.
_POSIX_PATH = re.compile(r"(?<![\w.:/])(?:~|/)(?:[^\s/\"'`<>():,;|]+/)+([^\s/\"'`<>():,;|]*)")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\(?:[^\s\\\"'<>|:]+\\)+([^\s\\\"'<>|:]*)")


def _strip_paths(text: str) -> str:
    text = _POSIX_PATH.sub(lambda m: f"<path>/{m.group(1)}" if m.group(1) else "<path>", text)
    return _WINDOWS_PATH.sub(lambda m: f"<path>\\{m.group(1)}" if m.group(1) else "<path>", text)


def participant_failure_text(message: str, *, limit: int = MAX_PARTICIPANT_CHARS) -> str:
    """`message` fit for the team that submitted: no traceback frames, no server paths, at
    most `limit` characters (the cut is marked, so nobody mistakes it for the whole)."""
    if not message:
        return ""
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
        lines.append(line)
    text = _strip_paths("\n".join(lines)).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
