"""A tournament round at scale: `models` teams' uploaded models run when the host opens a
round (DESIGN.md section 8: 200 models on 2 worker processes within 60 s), while ordinary
submissions of another challenge keep arriving and are timed.

    round_200_models_s     round_open() -> every model run's predictions stored
    round_ordinary_p50_ms  an ordinary (trivial evaluate()) submission during that round:
                           accepted -> result row, one at a time (also p99, and idle p50)

Called by bench.run (`make bench`); `python -m bench.tournament [--models N]` runs only
this part, with its own database, queue, folders and worker.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sys
import time
import uuid
from dataclasses import dataclass, field

from bench.report import TARGETS

# The round's figure has a target (DESIGN.md section 8); registered here so bench.report
# needs no tournament knowledge.
TARGETS.setdefault("round_200_models_s", ("<=", 60))
FULL_MODELS, QUICK_MODELS = 200, 40


@dataclass
class RoundFigures:
    models: int
    round_s: float
    ordinary_ms: list[float] = field(default_factory=list)
    idle_ms: list[float] = field(default_factory=list)
    failed: int = 0


def _file(content: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content)


def setup_tournament(cast, *, models: int):
    """A tournament challenge, `models` teams each with an uploaded model (one stored file,
    shared: each run copies it into its own sandbox anyway)."""
    from django.contrib.auth import get_user_model

    from challenges.models import ChallengeParticipation, ParticipantTeam, TournamentModel
    from challenges.services.bundles import challenge_load_bundle
    from challenges.services.challenges import challenge_approve
    from challenges.tournaments import tournament_model_upload
    from tests import tournament_helpers as th
    from tests.workers.models import model_bytes

    challenge = challenge_load_bundle(
        source=io.BytesIO(th.tournament_bundle()), user=cast.host, host_team=cast.host_team
    ).challenge
    challenge = challenge_approve(challenge=challenge, reviewer=cast.admin)
    phase = challenge.phases.get()
    users = get_user_model().objects.bulk_create(
        [
            get_user_model()(username=f"bench-round-{i}", email=f"r{i}@bench.invalid")
            for i in range(models)
        ]
    )
    teams = ParticipantTeam.objects.bulk_create(
        [ParticipantTeam(name=f"bench-round-team-{i}", created_by=u) for i, u in enumerate(users)]
    )
    participations = ChallengeParticipation.objects.bulk_create(
        [
            ChallengeParticipation(challenge=challenge, team=t, accepted_terms_by=u)
            for t, u in zip(teams, users, strict=True)
        ]
    )
    first = tournament_model_upload(
        user=users[0],
        phase=phase,
        participation=participations[0],
        upload=_file(model_bytes(th.FOLLOWS), "model.pkl"),
    )
    TournamentModel.objects.bulk_create(
        [
            TournamentModel(
                phase=phase,
                team=p.team,
                uploaded_by=u,
                file=first.file.name,
                file_name=first.file_name,
                sha256=first.sha256,
                size=first.size,
            )
            for p, u in zip(participations[1:], users[1:], strict=True)
        ]
    )
    return phase


def measure_round(cast, *, ordinary, poller, models: int, idle_probes: int = 10) -> RoundFigures:
    from django.utils import timezone

    from bench.scenario import BenchError
    from challenges.models import RoundSubmission
    from challenges.tournaments import round_open
    from tests import tournament_helpers as th

    phase = setup_tournament(cast, models=models)
    idle = []
    for _ in range(idle_probes):
        accepted = ordinary.submit(cast)
        t = time.perf_counter()
        idle.append((poller.wait_one(accepted.pk, interval=0.002, timeout=60) - t) * 1000)

    started = time.perf_counter()
    opened = round_open(
        user=cast.host,
        phase=phase,
        live_features=io.BytesIO(th.live_features(1).encode()),
        closes_at=timezone.now() + dt.timedelta(hours=1),
    )
    runs = RoundSubmission.objects.filter(round=opened, source="model")
    busy = runs.filter(status__in=["queued", "predicting"])
    figures = RoundFigures(models=models, round_s=0.0, idle_ms=idle)
    deadline = started + 600
    # Ordinary submissions of another challenge, one at a time, for as long as the round runs.
    while busy.exists():
        accepted = ordinary.submit(cast)
        t = time.perf_counter()
        visible = poller.wait_one(accepted.pk, interval=0.002, timeout=120)
        figures.ordinary_ms.append((visible - t) * 1000)
        if time.perf_counter() > deadline:
            raise BenchError(f"{busy.count()} of {models} model runs unfinished after 600 s")
    while busy.exists():  # pragma: no cover - the loop above ends only when none is busy
        time.sleep(0.01)
    figures.round_s = time.perf_counter() - started
    figures.failed = runs.filter(status="failed").count()
    if figures.failed:
        failure = runs.filter(status="failed").values_list("failure_message", flat=True).first()
        raise BenchError(f"{figures.failed} of {models} model runs failed: {failure}")
    if runs.count() != models:
        raise BenchError(f"{runs.count()} model runs for {models} models")
    return figures


def measure_tournament_round(report, cast, *, ordinary, poller, quick: bool) -> None:
    """The bench.run entry point: adds the round's figures to `report`."""
    from bench.report import percentile

    models = QUICK_MODELS if quick else FULL_MODELS
    figures = measure_round(cast, ordinary=ordinary, poller=poller, models=models)
    report.add(
        f"round_{models}_models_s",
        figures.round_s,
        "s",
        f"round_open() -> all {models} model runs' predictions stored, 2 worker processes",
        2,
    )
    how = (
        f"trivial submissions of another challenge during the round (n={len(figures.ordinary_ms)})"
    )
    if figures.ordinary_ms:
        report.add("round_ordinary_p50_ms", percentile(figures.ordinary_ms, 0.5), "ms", how)
        report.add("round_ordinary_p99_ms", percentile(figures.ordinary_ms, 0.99), "ms", how)
    report.add(
        "round_ordinary_idle_p50_ms",
        percentile(figures.idle_ms, 0.5),
        "ms",
        "the same just before the round opened",
    )


def main(argv: list[str] | None = None) -> int:
    """Only this part: its own database, queue, folders and worker."""
    parser = argparse.ArgumentParser(prog="python -m bench.tournament")
    parser.add_argument("--models", type=int, default=FULL_MODELS)
    args = parser.parse_args(argv)
    from bench.services import (
        Folders,
        ThrowawayDatabase,
        Worker,
        bench_environment,
        broker_url,
        check_redis,
        database_server_url,
        forget_queue,
    )

    broker = broker_url()
    check_redis(broker)
    database = ThrowawayDatabase(database_server_url()).create()
    folders = Folders()
    queue = f"evalserver-bench-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        bench_environment(database_url=database.url, broker=broker, queue=queue, folders=folders)
    )
    worker = Worker(env=dict(os.environ), log_path=folders.logs / "worker.log", queue=queue)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from bench.report import Report
        from bench.scenario import TRIVIAL_EVALUATE, Arena, Cast, Poller
        from evalserver.celery import app

        app.conf.broker_url, app.conf.task_default_queue = broker, queue
        call_command("migrate", verbosity=0, interactive=False)
        worker.start()
        cast = Cast.create()
        ordinary = Arena.load(cast, TRIVIAL_EVALUATE, title="Bench trivial").approve_and_enter(cast)
        report = Report()
        figures = measure_round(cast, ordinary=ordinary, poller=Poller(), models=args.models)
        from bench.report import percentile

        report.add(
            f"round_{args.models}_models_s", figures.round_s, "s", "round_open() -> all stored", 2
        )
        report.add("round_ordinary_p50_ms", percentile(figures.ordinary_ms, 0.5), "ms", "during")
        report.add("round_ordinary_p99_ms", percentile(figures.ordinary_ms, 0.99), "ms", "during")
        report.add("round_ordinary_idle_p50_ms", percentile(figures.idle_ms, 0.5), "ms", "before")
        print(report.table(), flush=True)
        return 0
    finally:
        worker.stop()
        from django.db import connections

        connections.close_all()
        database.drop()
        for name in (queue, f"{queue}-rounds"):
            forget_queue(broker, name)
        folders.remove()


if __name__ == "__main__":
    sys.exit(main())
