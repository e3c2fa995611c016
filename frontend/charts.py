"""Inline SVG charts drawn by the server (no JavaScript, no chart library). Pure: no ORM."""

from __future__ import annotations

import datetime as dt
import math
import re
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


# Metrics that live in [0, 1] (or [0, 100] when written as percentages): their axis
# keeps to those bounds, so one score of 0.68 is drawn on 0..1, not on 0.18..1.18.
_UNIT_METRICS = re.compile(
    r"(^|[^a-z])(acc|accuracy|f1|f1[-_ ]?score|auc|roc[-_ ]?auc|precision|recall|iou|miou|"
    r"map|dice|jaccard|specificity|sensitivity|balanced[-_ ]?accuracy)([^a-z]|$)",
    re.IGNORECASE,
)


def natural_bounds(label: str, values: Sequence[float]) -> tuple[float, float] | None:
    """The metric's own bounds when its name and values say it has them."""
    if not values or not _UNIT_METRICS.search(label):
        return None
    if all(0 <= v <= 1 for v in values):
        return (0.0, 1.0)
    if all(0 <= v <= 100 for v in values):
        return (0.0, 100.0)
    return None


def axis_ticks(
    values: Sequence[float], bounds: tuple[float, float] | None = None, count: int = 5
) -> tuple[list[float], int]:
    """Round ticks covering `values` (at most `count` intervals, a step of 1, 2 or 5 times
    a power of ten) inside `bounds` when known, and the decimals every tick label uses."""
    low, high = min(values), max(values)
    if bounds is not None and (high - low) < (bounds[1] - bounds[0]) / 4:
        low, high = bounds  # a narrow spread on a bounded metric: show the whole scale
    if high == low:
        margin = abs(low) * 0.1 or 1.0
        low, high = low - margin, high + margin
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    if bounds is not None:
        first, last = max(first, bounds[0]), min(last, bounds[1])
    ticks = []
    value = first
    while value <= last + step / 2:
        ticks.append(round(value, 12))
        value += step
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return ticks, decimals


def _moment(when: dt.datetime) -> str:
    """A point in time in the reader's zone, named (as frontend.templatetags.when does):
    one format for every date on the chart."""
    local = timezone.localtime(when) if timezone.is_aware(when) else when
    return escape(f"{formats.date_format(local, 'SHORT_DATETIME_FORMAT')} {local:%Z}".strip())


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
    values = [p[1] for p in points] + [v for _name, v in baselines]
    ticks, decimals = axis_ticks(values, natural_bounds(label, values))
    low, high = ticks[0], ticks[-1]
    span = (end - start).total_seconds()

    def x(when: dt.datetime) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (when - start).total_seconds() / span

    def y(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - value) / (high - low)

    def number(value: float) -> str:
        return f"{value:.{decimals}f}"

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
    for value in ticks:
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y(value):.1f}" x2="{WIDTH - RIGHT}" '
            f'y2="{y(value):.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{number(value)}</text>"
        )
    parts.append(
        f'<text class="tick" x="{LEFT}" y="{HEIGHT - 12}">{_moment(start)}</text>'
        f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end">'
        f"{_moment(end)}</text>"
    )
    for name, value in baselines:
        tip = escape(_("baseline %(name)s") % {"name": name})
        parts.append(
            f'<line class="baseline" x1="{LEFT}" y1="{y(value):.1f}" x2="{WIDTH - RIGHT}" '
            f'y2="{y(value):.1f}"><title>{tip}: {number(value)}</title></line>'
        )
    for when, value in points:
        parts.append(f'<circle class="dot" cx="{x(when):.1f}" cy="{y(value):.1f}" r="2.5"/>')
    parts.append(f'<path class="best" d="{" ".join(path)}"/>')
    for when, value in best:
        parts.append(
            f'<circle class="best-dot" cx="{x(when):.1f}" cy="{y(value):.1f}" r="4">'
            f"<title>{_moment(when)}: {number(value)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def shake_up_svg(
    points: Sequence[tuple[float, float, str, bool]], *, x_label: str, y_label: str
) -> str:
    """Kaggle's shake-up: a dot per team at (public score, private score), the team's own
    dot marked, and the diagonal where both agree. `points`: (x, y, name, is_own)."""
    if not points:
        return f'<p class="meta">{escape(_("No team has both a public and a private score."))}</p>'
    values = [v for x, y, _name, _own in points for v in (x, y)]
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    size = HEIGHT + 120

    def sx(value: float) -> float:
        return LEFT + (size - LEFT - RIGHT) * (value - low) / (high - low)

    def sy(value: float) -> float:
        return TOP + (size - TOP - BOTTOM) * (high - value) / (high - low)

    title = escape(_("%(y)s against %(x)s, one dot per team") % {"x": x_label, "y": y_label})
    parts = [
        f'<svg class="chart shake-up" viewBox="0 0 {size} {size}" role="img" '
        f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>',
        f'<line class="axis" x1="{LEFT}" y1="{size - BOTTOM}" x2="{size - RIGHT}" '
        f'y2="{size - BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{size - BOTTOM}"/>',
        f'<line class="baseline" x1="{sx(low):.1f}" y1="{sy(low):.1f}" x2="{sx(high):.1f}" '
        f'y2="{sy(high):.1f}"/>',
        f'<text class="tick" x="{size - RIGHT}" y="{size - 8}" text-anchor="end">'
        f"{escape(x_label)}</text>",
        f'<text class="tick" x="{LEFT + 4}" y="{TOP + 10}">{escape(y_label)}</text>',
    ]
    for value in (low + pad, high - pad):
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{sy(value) + 4:.1f}" text-anchor="end">'
            f"{value:.4g}</text>"
            f'<text class="tick" x="{sx(value):.1f}" y="{size - BOTTOM + 14}" '
            f'text-anchor="middle">{value:.4g}</text>'
        )
    for x, y, name, own in points:
        css = "best-dot own" if own else "dot team"
        parts.append(
            f'<circle class="{css}" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{5 if own else 4}" '
            f'data-team="{escape(name)}"><title>{escape(name)}: {x:.4g} / {y:.4g}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)
