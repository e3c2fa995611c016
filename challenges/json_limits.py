"""JSON from clients, read with a depth and a size limit.

Python's decoder recurses once per nesting level: 1,000 `[` in a 2 KB body raise
RecursionError, a 500, before any view runs. Every place that decodes JSON a client sent
(the API's body parser, multipart fields such as `meta_attributes`, EvalAI's
`submission_metadata`, tus `Upload-Metadata`) goes through `json_loads_bounded`, which
counts the nesting before decoding and says what was wrong. Pure text handling, no ORM.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.utils.translation import gettext as _

MAX_DEPTH = 64
# A string literal (escapes included) or one bracket: strings are skipped whole, so a
# "[" inside one is not counted.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class JSONLimitError(ValueError):
    """The text is not JSON, or too deep or too long to decode; the message says which
    and where."""


def json_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when `text` opens more than `limit` arrays or objects inside one another."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case, without a scan
    depth = 0
    for match in _TOKEN.finditer(text):
        found = match.group()
        if found in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif found in ("]", "}"):
            depth -= 1
    return False


def _reject_constant(name: str):
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(_("%(name)s is not a JSON value") % {"name": name})


def json_loads_bounded(
    text: str | bytes, *, where: str, max_depth: int = MAX_DEPTH, max_chars: int | None = None
) -> Any:
    """`text` decoded, or JSONLimitError / ValueError with a message naming `where` (a
    field or "the request body")."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if max_chars is not None and len(text) > max_chars:
        raise JSONLimitError(
            _("JSON longer than %(limit)s characters in %(where)s")
            % {"limit": max_chars, "where": where}
        )
    if json_depth_exceeds(text, max_depth):
        raise JSONLimitError(
            _("JSON nested deeper than %(limit)s levels in %(where)s")
            % {"limit": max_depth, "where": where}
        )
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:  # a depth under the limit on a very small stack
        raise JSONLimitError(_("JSON nested too deeply in %(where)s") % {"where": where}) from None
    except ValueError as exc:
        raise JSONLimitError(
            _("not valid JSON in %(where)s: %(error)s") % {"where": where, "error": exc}
        ) from None
