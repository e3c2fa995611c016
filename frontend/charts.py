"""Inline SVG charts drawn by the server (no JavaScript, no chart library). Pure: no ORM."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

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
        return (
            '<p class="meta">No scored submissions yet: the chart appears with the first one.</p>'
        )
    best = running_best(points, higher_is_better=higher_is_better)
    times = [p[0] for p in points]
    start = min(times)
    end = max([*times, now or max(times)])
    if end <= start:
        end = start + dt.timedelta(hours=1)
    values = [p[1] for p in points] + [v for _name, v in baselines]
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
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Best {escape(label)} over time" xmlns="http://www.w3.org/2000/svg">',
        f"<title>Best {escape(label)} over time</title>",
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
        f'<text class="tick" x="{LEFT}" y="{HEIGHT - 12}">{start:%Y-%m-%d}</text>'
        f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end">'
        f"{end:%Y-%m-%d %H:%M}</text>"
    )
    for name, value in baselines:
        parts.append(
            f'<line class="baseline" x1="{LEFT}" y1="{y(value):.1f}" x2="{WIDTH - RIGHT}" '
            f'y2="{y(value):.1f}"><title>baseline {escape(name)}: {value:.4g}</title></line>'
        )
    for when, value in points:
        parts.append(f'<circle class="dot" cx="{x(when):.1f}" cy="{y(value):.1f}" r="2.5"/>')
    parts.append(f'<path class="best" d="{" ".join(path)}"/>')
    for when, value in best:
        parts.append(
            f'<circle class="best-dot" cx="{x(when):.1f}" cy="{y(value):.1f}" r="4">'
            f"<title>{when:%Y-%m-%d %H:%M} UTC: {value:.4g}</title></circle>"
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
