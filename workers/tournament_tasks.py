"""Celery tasks of live tournaments: thin. Take an id, call the worker function."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import celeryd_after_setup, worker_ready

log = logging.getLogger(__name__)


@shared_task(
    name="workers.run_round_model", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_round_model(run_id: int) -> None:
    from workers.tournaments import run_round_model as run

    run(run_id=run_id, worker_node=run_round_model.request.hostname or "local")


@shared_task(
    name="workers.score_round_submission",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def score_round_submission(submission_id: int, targets_version: int) -> None:
    from workers.tournaments import score_round_submission as score

    score(submission_id=submission_id, targets_version=targets_version)


@shared_task(
    name="workers.validate_tournament_model",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def validate_tournament_model(model_id: int, token: str = "") -> None:
    from workers.model_validation import validate_model

    validate_model(model_id=model_id, token=token)


@shared_task(
    name="workers.diagnose_tournament_model",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def diagnose_tournament_model(model_id: int) -> None:
    from workers.model_validation import diagnose_model

    diagnose_model(model_id=model_id)


@shared_task(name="workers.sweep_tournaments", ignore_result=True)
def sweep_tournaments() -> None:
    from challenges.tournaments import tournaments_sweep
    from challenges.tournaments.folders import rounds_from_folder

    report = tournaments_sweep()
    opened = rounds_from_folder()
    if report.resent or report.requeued or report.failed or report.models_resent or opened:
        log.info("tournaments: %s, opened/resolved %s from the folder", report, opened)


@celeryd_after_setup.connect
def _consume_the_tournament_queue(sender, instance, **kwargs) -> None:
    """Every worker takes round work too, next to each of its queues (`-Q a,b` adds
    `a-rounds,b-rounds`): Redis hands out the queues in turn, so a 200-model round and
    ordinary submissions share the workers."""
    from challenges.services.queues import ROUNDS_SUFFIX, default_queue, rounds_queue

    queues = instance.app.amqp.queues
    default = default_queue()
    for name in list(queues.consume_from or queues):
        if not name.endswith(ROUNDS_SUFFIX):
            queues.select_add(rounds_queue("" if name == default else name))


@worker_ready.connect
def _recover_round_runs(sender=None, **kwargs) -> None:
    """Model runs a previous instance of this worker node left predicting run again."""
    from challenges.tournaments import round_runs_recover_worker

    node = getattr(sender, "hostname", None)
    if not node:
        return
    report = round_runs_recover_worker(worker_prefix=f"{node}/")
    if report.requeued or report.failed:
        log.warning("recovered model runs of %s: %s", node, report)
