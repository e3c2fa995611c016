"""Evaluation-script versions: the state of their requirements environment."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

from challenges.models import Challenge, EvaluationScript
from challenges.services.queues import evaluation_queue

BUILD_TASK = "workers.build_environment"
EnvStatus = EvaluationScript.EnvStatus
logger = logging.getLogger(__name__)


def script_set_env_status(*, script_id: int, status: str, log: str | None = None) -> None:
    fields: dict = {"env_status": status}
    if log is not None:
        fields["env_log"] = log[-100_000:]
    EvaluationScript.objects.filter(pk=script_id).update(**fields)


def challenge_prepare_environments(*, challenge: Challenge) -> list[int]:
    """After approval: install the requirements of the current script version, in the background."""
    script = challenge.scripts.order_by("-version").first()
    if script is None or not script.requirements.strip():
        return []
    updated = EvaluationScript.objects.filter(
        pk=script.pk, env_status__in=[EnvStatus.NOT_NEEDED, EnvStatus.PENDING, EnvStatus.FAILED]
    ).update(env_status=EnvStatus.PENDING)
    if updated:
        # Built by a worker of the challenge's own queue: environments are per machine.
        queue = evaluation_queue(challenge.queue)
        transaction.on_commit(lambda: _send_build(script.pk, queue))
    return [script.pk]


def _send_build(script_id: int, queue: str) -> None:
    try:
        current_app.send_task(
            BUILD_TASK,
            args=[script_id],
            queue=queue,
            retry=True,
            retry_policy={"max_retries": 2},
        )
    except Exception:  # the worker builds on first use anyway
        logger.warning(
            "could not enqueue the environment build of script %s", script_id, exc_info=True
        )
