"""What a host should know about the results of their challenge although every one was
accepted: results that left out some of their leaderboard's labels (DESIGN section 4:
stored, as EvalAI stores them; the cells stay empty)."""

from __future__ import annotations

from dataclasses import dataclass

from challenges import leaderboard_rules as rules
from challenges.models import Challenge, ChallengePhaseSplit, SubmissionResult


@dataclass(frozen=True)
class LackingLabels:
    phase_name: str
    split_codename: str
    labels: list[str]
    count: int  # active results on the split that lack at least one label


def results_lacking_labels(challenge: Challenge) -> list[LackingLabels]:
    """Per phase split with such results, how many lack a label. One count per split:
    a challenge has a handful of splits, and each count reads only its own results."""
    found = []
    splits = (
        ChallengePhaseSplit.objects.filter(phase__challenge=challenge)
        .select_related("phase", "dataset_split", "leaderboard")
        .order_by("phase__pk", "pk")
    )
    for split in splits:
        labels = rules.labels_of(split.leaderboard.schema)
        if not labels:
            continue
        count = (
            SubmissionResult.objects.filter(phase_split=split, is_active=True)
            .exclude(scores__has_keys=labels)
            .count()
        )
        if count:
            found.append(
                LackingLabels(split.phase.name, split.dataset_split.codename, labels, count)
            )
    return found
