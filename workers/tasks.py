"""Celery tasks: thin. Take an id, call the service."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_ready

from challenges.services.submissions import submissions_recover_worker, submissions_sweep
from workers.evaluation import evaluate_submission as run_evaluation_of

log = logging.getLogger(__name__)


@shared_task(
    name="workers.evaluate_submission",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def evaluate_submission(submission_id: int) -> None:
    run_evaluation_of(
        submission_id=submission_id, worker_node=evaluate_submission.request.hostname or "local"
    )


@shared_task(name="workers.sweep_submissions", ignore_result=True)
def sweep_submissions() -> None:
    report = submissions_sweep()
    if report.requeued or report.failed:
        log.info("sweeper: re-sent %s, failed %s", report.requeued, report.failed)


@shared_task(name="workers.purge_failed_inputs", ignore_result=True)
def purge_failed_inputs() -> None:
    from challenges.services.submission_storage import submissions_purge_failed_inputs

    submissions_purge_failed_inputs()


@shared_task(name="workers.sweep_uploads", ignore_result=True)
def sweep_uploads() -> None:
    from challenges.services.resumable import resumable_uploads_sweep

    resumable_uploads_sweep()


@shared_task(name="workers.sweep_rounds", ignore_result=True)
def sweep_rounds() -> None:
    from challenges.services.webhooks import rounds_open_due, webhook_deliveries_resend_stale

    opened, resent = rounds_open_due(), webhook_deliveries_resend_stale()
    if opened or resent:
        log.info("rounds: opened %s, re-sent %s webhook deliveries", opened, resent)


@shared_task(name="workers.deliver_webhook", bind=True, ignore_result=True, max_retries=None)
def deliver_webhook(self, delivery_id: int) -> None:
    from workers.webhooks import deliver

    delay = deliver(delivery_id)
    if delay is not None:
        raise self.retry(countdown=delay)


@worker_ready.connect
def _recover_after_restart(sender=None, **kwargs) -> None:
    """Submissions that a previous run of this worker node left running."""
    from workers.sandbox.runner import isolation

    if isolation():
        log.info("sandbox: evaluations run without network, via %s", " ".join(isolation()))
    else:
        log.warning(
            "sandbox: this kernel allows no new network namespace; evaluations CAN reach the network. "
            "Run the worker as root or with CAP_SYS_ADMIN (see docs/deployment.md)."
        )
    from workers.code_evaluation import code_refused

    if code_refused():
        log.error(
            "sandbox: no network namespace, so this worker REFUSES code submissions (they fail "
            "with a platform error). Give it one, or set "
            "EVALUATION_ALLOW_CODE_WITHOUT_NETWORK_ISOLATION=true to run models anyway."
        )
    elif not isolation():
        log.warning("sandbox: code submissions run WITH network access (allowed by the operator).")
    node = getattr(sender, "hostname", None)
    if not node:
        return
    report = submissions_recover_worker(worker_prefix=f"{node}/")
    if report.requeued or report.failed:
        log.warning(
            "recovered after restart of %s: re-sent %s, failed %s",
            node,
            report.requeued,
            report.failed,
        )


@worker_init.connect
def _check_the_sandbox(**kwargs) -> None:
    """Before taking any work: a sandboxed child must import what evaluations import lazily.
    SystemExit (not an Exception, which Celery's signal dispatch would only log) stops the
    worker with the check's message."""
    from django.conf import settings

    from workers.sandbox.check import refuse_unless_sandbox_works

    if settings.EVALUATION_SANDBOX_CHECK:
        refuse_unless_sandbox_works()


@worker_process_init.connect
def _die_with_the_worker(**kwargs) -> None:
    """A pool process must not outlive a kill -9 of its worker and finish a task twice."""
    from workers.sandbox.process import die_with_parent

    die_with_parent()


@shared_task(name="workers.build_environment", ignore_result=True)
def build_environment(script_id: int) -> None:
    from challenges.models import EvaluationScript
    from workers.environments import EnvironmentError_, ensure_environment

    script = EvaluationScript.objects.filter(pk=script_id).first()
    if script is None or not script.requirements.strip():
        return
    try:
        ensure_environment(script)
    except EnvironmentError_ as exc:
        log.warning("script %s: %s", script_id, exc)


# Live tournaments' tasks and worker hooks register on import.
from workers import notification_tasks, tournament_tasks  # noqa: E402, F401
