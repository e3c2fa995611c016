"""Per-era metrics of a round submission, and the cumulative standing over rounds. Pure:
no ORM, no numpy (the web process computes standings without importing it).

The host's evaluate() returns one score per era (usually the correlation of the
predictions with the era's targets); the platform summarises them the same way for
every tournament, as Numerai does:

- corr_mean: the mean of the per-era scores;
- corr_std: their sample standard deviation (ddof=1; 0.0 with fewer than two eras);
- sharpe: corr_mean / corr_std (0.0 when the std is 0 or there are fewer than two eras);
- max_drawdown: the largest fall of the cumulative sum of the per-era scores from its
  running peak, the peak starting at 0 before the first era; a number <= 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

METRICS = ("corr_mean", "corr_std", "sharpe", "max_drawdown")


class PerEraError(ValueError):
    """evaluate() returned no usable per-era scores; the message says what it returned."""


def era_metrics(per_era: Sequence[float]) -> dict[str, float]:
    values = [float(v) for v in per_era]
    if not values:
        raise PerEraError("There are no eras to score.")
    if not all(math.isfinite(v) for v in values):
        raise PerEraError("A per-era score is not a finite number.")
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    # Identical per-era scores would divide by (almost) zero.
    sharpe = mean / std if std > 1e-12 else 0.0
    peak = cumulative = drawdown = 0.0
    for value in values:
        cumulative += value
        peak = max(peak, cumulative)
        drawdown = min(drawdown, cumulative - peak)
    return {
        "corr_mean": mean,
        "corr_std": std,
        "sharpe": sharpe,
        "max_drawdown": drawdown + 0.0,  # + 0.0 turns -0.0 into 0.0
    }


def per_era_from_output(output: Mapping[str, Any] | None) -> dict[str, float]:
    """The per-era scores in what evaluate() returned: `submission_metadata.per_era`
    ({era: score}), or the Numerai starter's `per_era_corr` ({split: {era: score}}, the
    first split). Eras keep evaluate()'s order, which the drawdown depends on."""
    metadata = (output or {}).get("submission_metadata") or {}
    if not isinstance(metadata, Mapping):
        metadata = {}
    per_era = metadata.get("per_era")
    if per_era is None and isinstance(metadata.get("per_era_corr"), Mapping):
        per_split = metadata["per_era_corr"]
        per_era = next(iter(per_split.values()), None) if per_split else None
    if not isinstance(per_era, Mapping) or not per_era:
        raise PerEraError(
            "The evaluation script returned no per-era scores: a tournament's evaluate() must "
            'return {"submission_metadata": {"per_era": {era: score, ...}}} (host configuration error).'
        )
    try:
        return {str(era): float(score) for era, score in per_era.items()}
    except (TypeError, ValueError):
        raise PerEraError("A per-era score is not a number (host configuration error).") from None


def cumulative_standing(
    rounds: Sequence[Mapping[str, float] | None],
) -> dict[str, float | int | None]:
    """The mean of each metric over the rounds a team was scored in, among the last N
    resolved rounds (`rounds`, None where the team has no score)."""
    scored = [r for r in rounds if r is not None]
    out: dict[str, float | int | None] = {"rounds": len(scored)}
    for metric in METRICS:
        out[metric] = sum(r[metric] for r in scored) / len(scored) if scored else None
    return out
