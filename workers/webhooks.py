"""Sending one webhook delivery: one attempt, logged by the service, retried by the task.

The host name is resolved once, by the check (`webhook_target`), and the connection is
made to the address that passed it: `PinnedAdapter` hands urllib3 that address while the
request keeps the name for the Host header, TLS SNI and certificate check. Resolving again
at connect time would let a name answer with a public address to the check and with
127.0.0.1 to the connection (DNS rebinding)."""

from __future__ import annotations

import time

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from challenges.models import WebhookDelivery
from challenges.services.webhooks import (
    WebhookRefused,
    WebhookTarget,
    webhook_body,
    webhook_delivery_give_up,
    webhook_delivery_record,
    webhook_signature,
    webhook_target,
)


class PinnedAdapter(HTTPAdapter):
    """Connects to `target.address` whatever the URL's name resolves to now; the name
    stays the TLS server name and the name the certificate must carry."""

    def __init__(self, target: WebhookTarget):
        self.target = target
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_params = {**host_params, "host": self.target.address, "port": self.target.port}
        if host_params["scheme"] == "https":
            pool_kwargs = {
                **pool_kwargs,
                "server_hostname": self.target.host,
                "assert_hostname": self.target.host,
            }
        return host_params, pool_kwargs


def pinned_session(target: WebhookTarget) -> requests.Session:
    session = requests.Session()
    # No proxy from the environment: a proxy would resolve the name again, elsewhere.
    session.trust_env = False
    adapter = PinnedAdapter(target)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def host_header(target: WebhookTarget) -> str:
    default = 443 if target.url.lower().startswith("https:") else 80
    name = f"[{target.host}]" if ":" in target.host else target.host
    return name if target.port == default else f"{name}:{target.port}"


def deliver(delivery_id: int) -> float | None:
    """Make one attempt. Returns the delay before the next one, or None when done."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return None
    webhook = delivery.webhook
    try:
        target = webhook_target(webhook.url)
    except WebhookRefused as exc:
        webhook_delivery_give_up(delivery_id=delivery_id, reason=str(exc))
        return None
    body = webhook_body(delivery.payload)
    headers = {
        "Host": host_header(target),
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
        with pinned_session(target) as session:
            # No redirects: a redirect could lead where the URL check would not have allowed.
            response = session.post(
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
