"""Values of a challenge config: conversions (EvalAI's spellings of numbers, booleans
and dates) and `ConfigReader`, the typed getters that report problems with their key
path and position instead of raising. Part of `challenges.bundle`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from typing import Any

from django.utils.translation import gettext as _

from challenges.bundle.archive import Folder, MemberError
from challenges.bundle.names import normalise_relative
from challenges.bundle.spec import Limits, Problem, Severity
from challenges.bundle.yaml_reader import ParsedYaml, key_name

MAX_POSITIVE_INT = 2**31 - 1  # PositiveIntegerField
MAX_BIG_INT = 2**63 - 1

_TRUE = {"true", "yes", "on", "1", "t", "y"}
_FALSE = {"false", "no", "off", "0", "f", "n"}


def _required(path: str, *, date: bool = False) -> str:
    """ "is required.", with what to add for the keys every bundle needs."""
    if path == "title":
        return _("is required. Add `title: Your challenge name` to the config.")
    if path == "evaluation_script":
        return _(
            "is required. Add `evaluation_script: evaluation_script.zip` and put that zip, "
            "holding your evaluation package, next to the config."
        )
    if path == "end_date":
        return _("is required. Add `end_date: 2030-12-31 23:59:59` (UTC).")
    if date:
        return _("is required. Write it as YYYY-MM-DD HH:MM:SS in UTC, e.g. 2030-12-31 23:59:59.")
    return _("is required.")


def kind(value: Any) -> str:
    if value is None:
        return _("empty")
    if isinstance(value, bool):
        return _("true/false (%(value)s)") % {"value": value}
    if isinstance(value, dict):
        return _("a mapping")
    if isinstance(value, list):
        return _("a list")
    if isinstance(value, str):
        return _("text (%(value)s)") % {"value": short(value)}
    if isinstance(value, dt.date):
        return _("a date (%(value)s)") % {"value": value}
    if isinstance(value, int | float):
        return _("a number (%(value)s)") % {"value": value}
    return type(value).__name__


def not_in_zip(value: Any, hint: str) -> str:
    """A config path names a file the zip lacks; `hint` (maybe "") says what is near."""
    return _("names %(value)s, which is not in the zip%(hint)s.") % {
        "value": short(value),
        "hint": hint,
    }


def _outside(value: Any) -> str:
    return _("must be a path inside the bundle, relative to the config file, not %(value)s.") % {
        "value": short(value)
    }


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def join_key(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([+-]?\d{1,30})(\.0*)?\s*", value)
        if match:
            return int(match.group(1))
    return None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def to_datetime(value: Any) -> dt.datetime | None:
    """YAML timestamps, dates and the strings EvalAI accepts; naive means UTC."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        text = re.sub(r"\s*(UTC|GMT|Z|z)$", "+00:00", text)
        if re.match(r"^\d{4}/\d{1,2}/\d{1,2}", text):
            text = text.replace("/", "-", 2)
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            moment = None
            for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
                try:
                    moment = dt.datetime.strptime(text, fmt)  # noqa: DTZ007 - made UTC below
                    break
                except ValueError:
                    continue
            if moment is None:
                return None
    else:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def to_number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        return int(number) if number.is_integer() else number
    return None


def config_problem(
    parsed: ParsedYaml,
    config_file: str,
    severity: Severity,
    key: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
) -> Problem:
    """A problem of the config at `key` (its line and column in the config), or of another
    `file` (at `line`, when known)."""
    column = None
    if file is None:
        line, column = parsed.position(key)
    return Problem(
        message, file=file or config_file, key=key, line=line, column=column, severity=severity
    )


class ConfigReader:
    """Typed access to the config; every problem is collected, none raised."""

    def __init__(
        self,
        parsed: ParsedYaml,
        config_file: str,
        folder: Folder,
        limits: Limits,
        problems: list[Problem],
    ):
        self.parsed = parsed
        self.config_file = config_file
        self.folder = folder
        self.limits = limits
        self.problems = problems

    # -- reporting -----------------------------------------------------------------

    def report(
        self, severity: Severity, key: str, message: str, *, file: str | None = None
    ) -> None:
        self.problems.append(
            config_problem(self.parsed, self.config_file, severity, key, message, file=file)
        )

    def error(self, key: str, message: str, **kw: Any) -> None:
        self.report("error", key, message, **kw)

    def warning(self, key: str, message: str, **kw: Any) -> None:
        self.report("warning", key, message, **kw)

    # -- typed values --------------------------------------------------------------

    def text(
        self,
        m: dict,
        key: str,
        prefix: str,
        *,
        required: bool = False,
        default: str = "",
        max_len: int | None = None,
    ) -> str:
        path = join_key(prefix, key)
        value = m.get(key)
        if value is None or (required and isinstance(value, str) and not value.strip()):
            if required:
                self.error(path, _required(path))
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float | dt.date):
            self.error(path, _("must be text, not %(kind)s.") % {"kind": kind(value)})
            return default
        text = value.isoformat() if isinstance(value, dt.date) else str(value)
        if max_len is not None and len(text) > max_len:
            self.error(
                path,
                _("is %(length)s characters long; the limit is %(limit)s.")
                % {"length": len(text), "limit": max_len},
            )
        return text

    def integer(
        self,
        m: dict,
        key: str,
        prefix: str,
        *,
        default: int | None,
        minimum: int = 0,
        maximum: int = MAX_POSITIVE_INT,
        required: bool = False,
    ) -> int | None:
        path = join_key(prefix, key)
        value = m.get(key)
        if value is None:
            if required:
                self.error(path, _required(path))
            return default
        number = to_int(value)
        if number is None:
            self.error(path, _("must be a whole number, not %(kind)s.") % {"kind": kind(value)})
            return default
        if number < minimum:
            if minimum == 1:
                message = _("must be a positive whole number, not %(number)s.")
            else:
                message = _("must be a whole number of at least %(minimum)s, not %(number)s.")
            self.error(path, message % {"minimum": minimum, "number": number})
            return default
        if number > maximum:
            self.error(
                path,
                _("must be at most %(maximum)s, not %(number)s.")
                % {"maximum": f"{maximum:,}", "number": f"{number:,}"},
            )
            return default
        return number

    def boolean(self, m: dict, key: str, prefix: str, *, default: bool) -> bool:
        value = m.get(key)
        if value is None:
            return default
        flag = to_bool(value)
        if flag is None:
            self.error(
                join_key(prefix, key),
                _("must be True or False, not %(kind)s.") % {"kind": kind(value)},
            )
            return default
        return flag

    def date(self, m: dict, key: str, prefix: str, *, required: bool = False) -> dt.datetime | None:
        path = join_key(prefix, key)
        value = m.get(key)
        if value is None:
            if required:
                self.error(path, _required(path, date=True))
            return None
        moment = to_datetime(value)
        if moment is None:
            self.error(
                path,
                _(
                    "is not a date: %(value)s. Write it as YYYY-MM-DD HH:MM:SS in UTC, "
                    "e.g. 2030-12-31 23:59:59."
                )
                % {"value": short(value)},
            )
        return moment

    def dates_in_order(
        self, prefix: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> None:
        if start is not None and end is not None and start >= end:
            self.error(
                join_key(prefix, "start_date"),
                _("must be before end_date (%(start)s is not before %(end)s UTC).")
                % {"start": f"{start:%Y-%m-%d %H:%M:%S}", "end": f"{end:%Y-%m-%d %H:%M:%S}"},
            )

    def text_list(self, m: dict, key: str, prefix: str) -> list[str]:
        path = join_key(prefix, key)
        value = m.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(
                path,
                _("must be a list (one item per line, each starting with '- '), not %(kind)s.")
                % {"kind": kind(value)},
            )
            return []
        result = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.error(f"{path}[{i}]", _("must be text, not %(kind)s.") % {"kind": kind(item)})
                continue
            result.append(str(item))
        return result

    def items(
        self, m: dict, key: str, prefix: str, *, required: bool = False
    ) -> list[tuple[str, dict]]:
        """The mappings listed under `key`, each with its key path."""
        path = join_key(prefix, key)
        value = m.get(key)
        if value is None or value == []:
            if required:
                self.error(
                    path, _("is required: list at least one item under `%(key)s:`.") % {"key": key}
                )
            return []
        if not isinstance(value, list):
            if isinstance(value, dict):
                message = _("must be a list (start each item with '- '), not %(kind)s.")
            else:
                message = _("must be a list, not %(kind)s.")
            self.error(path, message % {"kind": kind(value)})
            return []
        result = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                self.error(
                    f"{path}[{i}]",
                    _("must be a mapping of keys (like `id: 1`), not %(kind)s.")
                    % {"kind": kind(item)},
                )
                continue
            result.append((f"{path}[{i}]", item))
        return result

    def unknown(self, m: dict, prefix: str, known: set[str], evalai: set[str]) -> dict[str, Any]:
        extra = {}
        for key, value in m.items():
            name = key_name(key)
            if name in known:
                continue
            extra[str(key)] = value
            path = join_key(prefix, name)
            if name in evalai:
                self.warning(
                    path,
                    _(
                        "'%(name)s' is an EvalAI setting this platform does not use; it is kept "
                        "and ignored."
                    )
                    % {"name": name},
                )
            else:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                if close:
                    message = _(
                        "Unknown key '%(name)s': kept, but not used. Did you mean '%(key)s'?"
                    )
                else:
                    message = _("Unknown key '%(name)s': kept, but not used.")
                self.warning(path, message % {"name": name, "key": close[0] if close else ""})
        return extra

    # -- files in the bundle -------------------------------------------------------

    def file_ref(self, m: dict, key: str, prefix: str, *, missing: Severity) -> str | None:
        """A path in the config that must name a file of the bundle: normalised, or None."""
        path = join_key(prefix, key)
        value = m.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(
                path,
                _("must be the path of a file in the bundle, not %(kind)s.")
                % {"kind": kind(value)},
            )
            return None
        rel = normalise_relative(value)
        if rel is None:
            self.error(path, _outside(value))
            return None
        if not self.folder.is_file(rel):
            self.report(missing, path, not_in_zip(value, self.folder.hint(rel)))
            return None
        return rel

    def content(
        self, m: dict, key: str, prefix: str, *, missing: Severity, inline: bool = False
    ) -> str:
        """The text of the HTML file a key names (EvalAI stores the content, not the path)."""
        path = join_key(prefix, key)
        value = m.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.error(
                path,
                _("must be the path of an HTML file in the bundle, not %(kind)s.")
                % {"kind": kind(value)},
            )
            return ""
        rel = normalise_relative(value)
        if rel is not None and self.folder.is_file(rel):
            if not inline and not rel.lower().endswith((".html", ".htm")):
                self.warning(
                    path,
                    _("names %(value)s, which is not an .html file; it is shown as it is.")
                    % {"value": short(value)},
                )
            return self.read_text(rel, path)
        if inline or not re.fullmatch(r"[^\s<>]+\.[A-Za-z0-9]{1,6}", value.strip()):
            if not inline:
                self.warning(
                    path,
                    _("is not the path of a file in the bundle; its text is used as the content."),
                )
            return value
        if rel is None:
            self.error(path, _outside(value))
            return ""
        self.report(missing, path, not_in_zip(value, self.folder.hint(rel)))
        return ""

    def read_text(self, rel: str, path: str) -> str:
        try:
            data = self.folder.read(rel, self.limits.max_text_file_bytes)
        except MemberError as exc:
            self.error(path, str(exc))
            return ""
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16", errors="replace")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.warning(
                path,
                _(
                    "The file is not UTF-8; it was read as Windows-1252. Save it as UTF-8 so "
                    "that every character shows as intended."
                ),
                file=self.folder.where(rel),
            )
            return data.decode("cp1252", errors="replace")

    def unique(self, seen: dict, value: Any, path: str) -> None:
        if value is None:
            return
        if value in seen:
            self.error(
                path,
                _("%(value)s is already used by %(other)s; it must be unique.")
                % {"value": repr(value), "other": seen[value]},
            )
        else:
            seen[value] = path.rsplit(".", 1)[0]
