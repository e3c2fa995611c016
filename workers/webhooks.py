"""Sending one webhook delivery: one attempt, logged by the service, retried by the task."""

from __future__ import annotations

import time

import requests
from django.conf import settings

from challenges.models import WebhookDelivery
from challenges.services.webhooks import (
    webhook_body,
    webhook_delivery_give_up,
    webhook_delivery_record,
    webhook_signature,
    webhook_url_problem,
)


def deliver(delivery_id: int) -> float | None:
    """Make one attempt. Returns the delay before the next one, or None when done."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return None
    webhook = delivery.webhook
    problem = webhook_url_problem(webhook.url)
    if problem:
        webhook_delivery_give_up(delivery_id=delivery_id, reason=problem)
        return None
    body = webhook_body(delivery.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "evalserver-webhook/1",
        "X-Evalserver-Signature": webhook_signature(webhook.secret, body),
        "X-Evalserver-Delivery": str(delivery.pk),
        "X-Evalserver-Event": "test"
        if delivery.payload.get("isTest")
        else delivery.payload.get("event", "round"),
    }
    started = time.monotonic()
    status_code, error = None, ""
    try:
        # No redirects: a redirect could lead where the URL check would not have allowed.
        response = requests.post(
            webhook.url,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_S,
            allow_redirects=False,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"answered {status_code}: {response.text[:300]}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"
    return webhook_delivery_record(
        delivery_id=delivery_id,
        status_code=status_code,
        error=error,
        seconds=time.monotonic() - started,
    )
