"""Hosts' chat webhooks (Slack, Mattermost, Microsoft Teams): registered under the same
address rules as round webhooks, checked again before every message."""

from __future__ import annotations

from django.utils.translation import gettext as _

from challenges.access import require_challenge_host
from challenges.models import Challenge, ChatHook
from challenges.services.webhooks import WebhookRefused, webhook_url_problem

MAX_CHAT_HOOKS = 5


def chat_hook_create(*, user, challenge: Challenge, flavour: str, url: str, events) -> ChatHook:
    require_challenge_host(user, challenge, _("manage chat webhooks"))
    problem = webhook_url_problem(url)
    if problem:
        raise WebhookRefused(problem)
    if ChatHook.objects.filter(challenge=challenge).count() >= MAX_CHAT_HOOKS:
        raise WebhookRefused(
            _("A challenge may have at most %(n)d chat webhooks.") % {"n": MAX_CHAT_HOOKS}
        )
    return ChatHook.objects.create(
        challenge=challenge, flavour=flavour, url=url, events=sorted(set(events)), created_by=user
    )


def chat_hook_delete(*, user, hook: ChatHook) -> None:
    require_challenge_host(user, hook.challenge, _("manage chat webhooks"))
    hook.delete()
