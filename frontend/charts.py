"""Inline SVG charts drawn by the server (no JavaScript, no chart library). Pure: no ORM."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils import formats, timezone
from django.utils.html import escape
from django.utils.translation import gettext as _

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 36


def running_best(
    points: Sequence[tuple[dt.datetime, float]], *, higher_is_better: bool
) -> list[tuple[dt.datetime, float]]:
    """The best value so far at each point in time, one entry per improvement."""
    best: list[tuple[dt.datetime, float]] = []
    for when, value in sorted(points, key=lambda p: p[0]):
        if not best or (value > best[-1][1] if higher_is_better else value < best[-1][1]):
            best.append((when, value))
    return best


def _day(when: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(when), "SHORT_DATE_FORMAT")


def _moment(when: dt.datetime) -> str:
    """A point in time in the reader's zone, named (as frontend.templatetags.when does)."""
    local = timezone.localtime(when)
    return escape(f"{formats.date_format(local, 'SHORT_DATETIME_FORMAT')} {local:%Z}")


def best_score_svg(
    points: Sequence[tuple[dt.datetime, float]],
    *,
    label: str,
    higher_is_better: bool,
    baselines: Sequence[tuple[str, float]] = (),
    now: dt.datetime | None = None,
) -> str:
    """A step line of the best `label` over time, with every submission as a faint dot and
    baselines as dashed lines. Returns markup for a `<figure>`; empty points give a note."""
    if not points:
        return '<p class="meta">{}</p>'.format(
            escape(_("No scored submissions yet: the chart appears with the first one."))
        )
    best = running_best(points, higher_is_better=higher_is_better)
    times = [p[0] for p in points]
    start = min(times)
    end = max([*times, now or max(times)])
    if end <= start:
        end = start + dt.timedelta(hours=1)
    values = [p[1] for p in points] + [v for _, v in baselines]
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    span = (end - start).total_seconds()

    def x(when: dt.datetime) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (when - start).total_seconds() / span

    def y(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - value) / (high - low)

    path = []
    for i, (when, value) in enumerate(best):
        if i:
            path.append(f"H{x(when):.1f}")
            path.append(f"V{y(value):.1f}")
        else:
            path.append(f"M{x(when):.1f},{y(value):.1f}")
    path.append(f"H{x(end):.1f}")
    title = escape(_("Best %(metric)s over time") % {"metric": label})
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{title}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
        f'y2="{HEIGHT - BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>',
    ]
    for value in (low + pad, high - pad):
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{value:.4g}</text>"
        )
    parts.append(
        f'<text class="tick" x="{LEFT}" y="{HEIGHT - 12}">{_day(start)}</text>'
        f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end">'
        f"{_moment(end)}</text>"
    )
    for name, value in baselines:
        tip = escape(_("baseline %(name)s") % {"name": name})
        parts.append(
            f'<line class="baseline" x1="{LEFT}" y1="{y(value):.1f}" x2="{WIDTH - RIGHT}" '
            f'y2="{y(value):.1f}"><title>{tip}: {value:.4g}</title></line>'
        )
    for when, value in points:
        parts.append(f'<circle class="dot" cx="{x(when):.1f}" cy="{y(value):.1f}" r="2.5"/>')
    parts.append(f'<path class="best" d="{" ".join(path)}"/>')
    for when, value in best:
        parts.append(
            f'<circle class="best-dot" cx="{x(when):.1f}" cy="{y(value):.1f}" r="4">'
            f"<title>{_moment(when)}: {value:.4g}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
