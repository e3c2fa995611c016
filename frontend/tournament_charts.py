"""A team's score by round, drawn by the server as inline SVG (like frontend.charts).
Pure: no ORM."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.translation import gettext as _

from frontend.charts import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH


def _value_scale(values: list[float]):
    """(low + pad, high - pad, y): the values' range with a margin of 8% each side, and the
    function from a value to its height in the chart."""
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad

    def y(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - value) / (high - low)

    return low + pad, high - pad, y


def _frame(title: str, y, ticks: tuple[float, float], *, x_axis: bool) -> list[str]:
    """The chart's opening: its title, the axes (the x axis when `x_axis`), a zero line
    and the two value ticks."""
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if x_axis:
        parts.append(
            f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
            f'y2="{HEIGHT - BOTTOM}"/>'
        )
    parts += [
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>',
        f'<line class="baseline" x1="{LEFT}" y1="{y(0.0):.1f}" x2="{WIDTH - RIGHT}" '
        f'y2="{y(0.0):.1f}"><title>0</title></line>',
    ]
    for value in ticks:
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{value:.4g}</text>"
        )
    return parts


def score_by_round_svg(points: Sequence[tuple[int, float]], *, label: str, team: str) -> str:
    """One dot per resolved round the team was scored in, joined by a line, with a zero
    line (a correlation below it lost). Returns markup for a `<figure>`."""
    if not points:
        return '<p class="meta">{}</p>'.format(
            escape(_("%(team)s has no scored round yet.") % {"team": team})
        )
    points = sorted(points)
    rounds = [p[0] for p in points]
    first, last = min(rounds), max(rounds)
    if first == last:
        first, last = first - 1, last + 1
    *ticks, y = _value_scale([p[1] for p in points] + [0.0])

    def x(number: int) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (number - first) / (last - first)

    title = _("%(metric)s of %(team)s by round") % {"metric": label, "team": team}
    parts = _frame(title, y, tuple(ticks), x_axis=True)
    for number in rounds:
        parts.append(
            f'<text class="tick" x="{x(number):.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
            f"{number}</text>"
        )
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x(n):.1f},{y(v):.1f}" for i, (n, v) in enumerate(points)
    )
    parts.append(f'<path class="best" d="{path}"/>')
    for number, value in points:
        tip = escape(_("round %(number)s") % {"number": number})
        parts.append(
            f'<circle class="best-dot" cx="{x(number):.1f}" cy="{y(value):.1f}" r="4">'
            f"<title>{tip}: {value:.4g}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def per_era_svg(rows: Sequence[dict], *, model: str) -> str:
    """A model's validation diagnostics: one bar per era (its correlation with the target,
    above or below zero) and the cumulative correlation as a line, as Numerai draws them.
    `rows`: {"era", "corr", "cumulative_corr"} in era order."""
    points = [(r["era"], r.get("corr") or 0.0, r.get("cumulative_corr") or 0.0) for r in rows]
    if not points:
        return '<p class="meta">{}</p>'.format(escape(_("No diagnostics yet.")))
    *ticks, y = _value_scale([v for _e, c, s in points for v in (c, s)] + [0.0])
    step = (WIDTH - LEFT - RIGHT) / len(points)
    title = _("Per-era correlation of %(model)s on the validation data") % {"model": model}
    parts = _frame(title, y, tuple(ticks), x_axis=False)
    zero = y(0.0)
    for i, (era, corr, _cumulative) in enumerate(points):
        top, bottom = sorted((y(corr), zero))
        parts.append(
            f'<rect class="bar{" negative" if corr < 0 else ""}" x="{LEFT + i * step + step * 0.1:.1f}" '
            f'y="{top:.1f}" width="{max(step * 0.8, 0.5):.1f}" height="{max(bottom - top, 0.5):.1f}">'
            f"<title>{escape(era)}: {corr:.4g}</title></rect>"
        )
    for i in sorted({0, len(points) - 1}):
        parts.append(
            f'<text class="tick" x="{LEFT + (i + 0.5) * step:.1f}" y="{HEIGHT - 12}" '
            f'text-anchor="middle">{escape(points[i][0])}</text>'
        )
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{LEFT + (i + 0.5) * step:.1f},{y(s):.1f}"
        for i, (_e, _c, s) in enumerate(points)
    )
    parts.append(f'<path class="best" d="{path}"><title>{escape(_("cumulative"))}</title></path>')
    parts.append("</svg>")
    return "".join(parts)
