"""Dates as a person reads them: in their time zone (frontend.middleware activates it),
formatted for their language, with the zone named; deadlines also relative."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import ngettext

register = template.Library()


def _local(value: dt.datetime) -> dt.datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


@register.filter
def when(value: dt.datetime | None, precision: str = "minutes") -> str:
    """`<time>` with the local date and time and the zone's abbreviation (JST, CET, UTC);
    the full zone name shows on hover. `precision` "seconds" adds the seconds."""
    if not isinstance(value, dt.datetime):
        return ""
    local = _local(value)
    shape = "DATETIME_FORMAT" if precision == "seconds" else "SHORT_DATETIME_FORMAT"
    return format_html(
        '<time datetime="{}" title="{}">{} {}</time>',
        value.isoformat(),
        timezone.get_current_timezone_name(),
        formats.date_format(local, shape),
        local.strftime("%Z") or timezone.get_current_timezone_name(),
    )


@register.filter
def day(value: dt.date | dt.datetime | None) -> str:
    """The local date alone, formatted for the language."""
    if isinstance(value, dt.datetime):
        value = _local(value)
    elif not isinstance(value, dt.date):
        return ""
    return formats.date_format(value, "SHORT_DATE_FORMAT")


def _span(seconds: float) -> tuple[int, str]:
    """The largest whole unit of a duration: (count, unit)."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return int(seconds // size), unit
    return max(1, int(seconds // 60)), "minute"


@register.filter
def closes(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """A deadline relative to now: "closes in 3 days", "closed 2 hours ago"."""
    if not isinstance(value, dt.datetime):
        return ""
    now = now or timezone.now()
    seconds = (value - now).total_seconds()
    count, unit = _span(abs(seconds))
    if seconds > 0:
        texts = {
            "day": ngettext("closes in %(n)d day", "closes in %(n)d days", count),
            "hour": ngettext("closes in %(n)d hour", "closes in %(n)d hours", count),
            "minute": ngettext("closes in %(n)d minute", "closes in %(n)d minutes", count),
        }
    else:
        texts = {
            "day": ngettext("closed %(n)d day ago", "closed %(n)d days ago", count),
            "hour": ngettext("closed %(n)d hour ago", "closed %(n)d hours ago", count),
            "minute": ngettext("closed %(n)d minute ago", "closed %(n)d minutes ago", count),
        }
    return texts[unit] % {"n": count}


@register.filter
def opens(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """A start relative to now: "opens in 2 days" (empty once it is past)."""
    if not isinstance(value, dt.datetime):
        return ""
    seconds = (value - (now or timezone.now())).total_seconds()
    if seconds <= 0:
        return ""
    count, unit = _span(seconds)
    texts = {
        "day": ngettext("opens in %(n)d day", "opens in %(n)d days", count),
        "hour": ngettext("opens in %(n)d hour", "opens in %(n)d hours", count),
        "minute": ngettext("opens in %(n)d minute", "opens in %(n)d minutes", count),
    }
    return texts[unit] % {"n": count}
