"""Every CSV the platform writes goes through `csv_writer`.

Team names, method names and failure messages are typed by strangers; a spreadsheet
opening the export runs a cell that starts with `=`, `+`, `-` or `@` (and, in some,
after a leading tab or carriage return) as a formula: `=HYPERLINK(...)` phones home
with the sheet's contents. Such text cells get a leading apostrophe, which spreadsheets
show as text and nobody mistakes for data. Numbers we computed are written as numbers:
`-0.5` is a score, not a formula.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_cell(value: Any) -> Any:
    """`value` as a CSV cell that no spreadsheet evaluates."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


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
