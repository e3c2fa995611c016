"""Celery tasks of notifications: thin. Take an id, call the service."""

from __future__ import annotations

import logging

from celery import shared_task

from challenges.notifications.fanout import event_fan_out
from challenges.notifications.outbox import outbox_send, outbox_sweep
from challenges.notifications.periodic import digests_record, phase_deadlines_record

log = logging.getLogger(__name__)


@shared_task(name="workers.fan_out_notification_event", ignore_result=True)
def fan_out_notification_event(event_id: int) -> None:
    event_fan_out(event_id=event_id)


@shared_task(name="workers.send_outbox_message", bind=True, ignore_result=True, max_retries=None)
def send_outbox_message(self, message_id: int) -> None:
    delay = outbox_send(message_id=message_id)
    if delay is not None:
        raise self.retry(countdown=delay)


@shared_task(name="workers.sweep_notifications", ignore_result=True)
def sweep_notifications() -> None:
    report = outbox_sweep()
    report["deadlines"] = phase_deadlines_record()
    report["digests"] = digests_record()
    if any(report.values()):
        log.info("notifications: %s", report)
