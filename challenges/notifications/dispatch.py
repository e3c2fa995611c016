"""Handing notification work to the workers: the tasks' names (challenges never imports
workers) and the one send. A lost broker message costs only time: the sweeper
(`outbox_sweep`) finds the rows nobody took."""

from __future__ import annotations

import logging

from celery import current_app

log = logging.getLogger(__name__)

FAN_OUT_TASK = "workers.fan_out_notification_event"
SEND_TASK = "workers.send_outbox_message"


def enqueue(task: str, pk: int) -> None:
    """Hand an id to the workers; when the broker is down the sweeper finds the row later."""
    try:
        current_app.send_task(
            task,
            args=[pk],
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        )
    except Exception as exc:
        log.warning("could not enqueue %s(%s): %s", task, pk, exc)
