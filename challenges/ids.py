"""Ids a client sends, bounded before they reach the database.

A path, query, body, header or tus metadata value of `99999999999999999999` is a valid
integer to Python and too large for the database's bigint: SQLite's driver raises
OverflowError, a 500. Every id from a client passes through `parse_id` (or the `<id:...>`
path converter, or `ID_PATTERN` in a regex route), which takes at most 18 digits: any
such number fits a bigint, and no row will ever have a larger id. Pure, no ORM.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

MAX_ID_DIGITS = 18
MAX_ID = 10**MAX_ID_DIGITS - 1
ID_PATTERN = f"[0-9]{{1,{MAX_ID_DIGITS}}}"


class InvalidId(ValueError):
    """Not an id; the message names the field and what it must be."""


def is_id(raw: Any) -> bool:
    if isinstance(raw, bool):
        return False
    if isinstance(raw, int):
        return 0 <= raw <= MAX_ID
    return isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= MAX_ID_DIGITS


def parse_id(raw: Any, *, field: str) -> int:
    """`raw` (text or int) as an id, or InvalidId saying which field was wrong."""
    if not is_id(raw):
        shown = str(raw)
        shown = shown if len(shown) <= 24 else shown[:24] + "…"
        raise InvalidId(
            _(
                "%(field)s must be an id (a whole number of at most %(digits)s digits), not %(value)r."
            )
            % {"field": field, "digits": MAX_ID_DIGITS, "value": shown}
        )
    return int(raw)
