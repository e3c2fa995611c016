"""Every CSV the platform writes goes through `csv_writer`.

Team names, method names and failure messages are typed by strangers; a spreadsheet
opening the export runs a cell that starts with `=`, `+`, `-` or `@` (and, in some,
after leading spaces, line breaks or zero-width characters, or in full-width form such
as `＝`) as a formula: `=HYPERLINK(...)` phones home
with the sheet's contents. Such text cells get a leading apostrophe, which spreadsheets
show as text and nobody mistakes for data. Numbers we computed are written as numbers:
`-0.5` is a score, not a formula.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Spreadsheets read the full-width forms (what an IME types) as the ASCII ones, and skip
# spaces, line breaks and zero-width characters before a formula; any of these in front of
# a formula character still makes a formula.
FORMULA_CHARACTERS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20\u2212\ufe62\ufe63\ufe66")
IGNORED_BEFORE_FORMULA = frozenset(
    " \t\r\n\v\f\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"  # spaces and line breaks
    "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad"  # zero-width and invisible
)


def formula_like(text: str) -> bool:
    """True when a spreadsheet could read `text` as a formula."""
    if text.startswith(FORMULA_PREFIXES):
        return True
    for char in text:
        if char in IGNORED_BEFORE_FORMULA:
            continue
        return char in FORMULA_CHARACTERS
    return False


def csv_safe_cell(value: Any) -> Any:
    """`value` as a CSV cell that no spreadsheet evaluates."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    return "'" + text if formula_like(text) else text


class _SafeWriter:
    def __init__(self, out, **kwargs):
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([csv_safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]):
        for row in rows:
            self.writerow(row)


def csv_writer(out, **kwargs) -> _SafeWriter:
    """A `csv.writer` over `out` whose every cell passes through `csv_safe_cell`."""
    return _SafeWriter(out, **kwargs)
