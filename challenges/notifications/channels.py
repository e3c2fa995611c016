"""How a message leaves: email through Django's mail framework (SMTP in production), chat
through an incoming webhook (Slack, Mattermost, Microsoft Teams) under the same address
rules as round webhooks. Each raises on failure; the outbox decides about retries."""

from __future__ import annotations

import requests
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from challenges.models import ChatHook


class SendFailed(Exception):
    """The message did not go; the text says why (kept on the outbox row)."""


def chat_payload(flavour: str, text: str, link: str) -> dict:
    """The JSON body each chat tool's incoming webhook expects."""
    if flavour == ChatHook.Flavour.TEAMS:
        # An Office 365 connector card: Teams' incoming webhooks take this shape.
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": text[:200],
            "text": f"{text}\n\n[{link}]({link})",
        }
    if flavour == ChatHook.Flavour.MATTERMOST:
        return {"text": f"{text}\n{link}", "username": "evalserver"}
    return {"text": f"<{link}|{text}>"}  # Slack's link syntax


def send_email(message: dict) -> None:
    email = EmailMessage(
        subject=message["subject"],
        body=message["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message["to"]],
        headers=message.get("headers") or {},
        connection=get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT),
    )
    try:
        email.send()
    except Exception as exc:  # SMTP refused, connection refused, timeouts: retry later
        raise SendFailed(f"{type(exc).__name__}: {exc}") from exc


def send_chat(hook: ChatHook, body: dict) -> None:
    from challenges.services.webhooks import webhook_url_problem

    problem = webhook_url_problem(hook.url)
    if problem:
        raise SendFailed(problem)
    try:
        # No redirects: a redirect could lead where the address check would not allow.
        response = requests.post(
            hook.url, json=body, timeout=settings.WEBHOOK_TIMEOUT_S, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise SendFailed(f"answered {response.status_code}: {response.text[:300]}")
