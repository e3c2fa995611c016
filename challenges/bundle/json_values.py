"""A bundle's YAML values as JSON-safe data, for the JSON columns they are stored in."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from typing import Any


def jsonable(value: Any) -> Any:
    """The YAML value as JSON-safe data (dates as ISO strings), for JSON columns."""
    if isinstance(value, dict):
        return {_json_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # PostgreSQL's jsonb refuses NaN and Infinity
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    return str(jsonable(key))
