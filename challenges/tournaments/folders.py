"""Rounds from a folder, on a timetable (the beat schedule's `workers.sweep_tournaments`).

    TOURNAMENT_ROUNDS_DIR/<challenge id>/<phase codename>/round-<n>/
        live_features.csv   the round opens with these ...
        opens_at            ... once this time (ISO 8601, optional) has passed
        closes_at           optional ISO 8601 close time (else the phase's round_hours)
        data_version        optional text
        targets.csv         uploaded once the round has closed; a changed file re-scores

Only the next round of a phase opens (its number one above the latest), so a folder may
hold the whole season in advance.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from challenges.models import Round, Tournament
from challenges.tournaments.core import TournamentRefused
from challenges.tournaments.rounds import round_open, round_targets_upload

log = logging.getLogger(__name__)


def _when(path: Path) -> dt.datetime | None:
    if not path.is_file():
        return None
    value = parse_datetime(path.read_text().strip())
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rounds_from_folder(*, root: str | Path | None = None, now: dt.datetime | None = None) -> int:
    """Open due rounds and upload new targets found under `root`. Returns how many."""
    root = Path(root or settings.TOURNAMENT_ROUNDS_DIR or "")
    if not str(root) or str(root) == "." or not root.is_dir():
        return 0
    now = now or timezone.now()
    done = 0
    for tournament in Tournament.objects.select_related("phase__challenge"):
        phase = tournament.phase
        folder = root / str(phase.challenge_id) / phase.codename
        if not folder.is_dir() or not phase.challenge.approved_by_admin:
            continue
        try:
            done += _open_next(phase, folder, now) + _targets(phase, folder, now)
        except (TournamentRefused, OSError) as exc:
            log.warning("rounds folder %s: %s", folder, exc)
    return done


def _open_next(phase, folder: Path, now: dt.datetime) -> int:
    latest = phase.rounds.order_by("-number").first()
    number = (latest.number if latest else 0) + 1
    if latest is not None and latest.closes_at and latest.closes_at > now:
        return 0
    here = folder / f"round-{number}"
    features = here / "live_features.csv"
    opens_at = _when(here / "opens_at")
    if not features.is_file() or (opens_at is not None and opens_at > now):
        return 0
    version = here / "data_version"
    with features.open("rb") as stream:
        round_open(
            user=None,
            phase=phase,
            live_features=stream,
            data_version=version.read_text().strip() if version.is_file() else "",
            closes_at=_when(here / "closes_at"),
            now=now,
        )
    return 1


def _targets(phase, folder: Path, now: dt.datetime) -> int:
    done = 0
    for closed in Round.objects.filter(phase=phase, closes_at__lte=now).exclude(live_features=""):
        targets = folder / f"round-{closed.number}" / "targets.csv"
        if not targets.is_file() or _sha256(targets) == closed.targets_sha256:
            continue
        with targets.open("rb") as stream:
            round_targets_upload(user=None, round=closed, targets=stream, now=now)
        done += 1
    return done
