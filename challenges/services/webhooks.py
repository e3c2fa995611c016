"""Rounds and round webhooks: when a phase opens or a host starts a new round, every
participating team's webhook gets a signed POST (DESIGN section 7).

The body is `{roundNumber, dataVersion, triggerId, isTest, challenge, phase}` as compact
JSON; the header `X-Evalserver-Signature: sha256=<hex>` is HMAC-SHA256 of exactly those
bytes under the webhook's secret. Deliveries go out from workers (`workers.deliver_webhook`)
after the transaction commits, are retried with exponential backoff, and every attempt
is logged on the delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import require_challenge_host, require_team_member
from challenges.models import (
    ChallengeParticipation,
    ChallengePhase,
    ParticipantTeam,
    Round,
    Webhook,
    WebhookDelivery,
)

DELIVER_TASK = "workers.deliver_webhook"
MAX_WEBHOOKS_PER_TEAM = 5
Status = WebhookDelivery.Status


class WebhookRefused(Exception):
    """The webhook cannot be registered or sent; the message says why."""


# Never a webhook's address, whatever the operator allows: nobody listens there for us,
# and some (0.0.0.0, multicast) reach this host or its network in surprising ways.
_NEVER = [
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", 'an unspecified ("this network") address'),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("192.0.2.0/24", "a documentation address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("::/128", "the unspecified address"),
        ("ff00::/8", "a multicast address"),
        ("100::/64", "a discard-only address"),
        ("2001::/23", "an IETF protocol address"),
        ("2001:db8::/32", "a documentation address"),
        ("2002::/16", "a 6to4 address"),
        ("64:ff9b::/96", "a NAT64 address"),
        ("64:ff9b:1::/48", "a NAT64 address"),
        ("fec0::/10", "a site-local address"),
    )
]
# This host or its own networks: only where the operator says every participant is trusted
# (WEBHOOK_ALLOW_PRIVATE, which the tests set to reach their servers on 127.0.0.1).
_PRIVATE = [
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("127.0.0.0/8", "a loopback address"),
        ("::1/128", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("fc00::/7", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("169.254.0.0/16", "a link-local address"),
        ("fe80::/10", "a link-local address"),
    )
]


def webhook_address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the platform will not connect to `address`, or None: only global unicast
    addresses, and this host's own networks where WEBHOOK_ALLOW_PRIVATE says so."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for network, label in _NEVER:
        if address.version == network.version and address in network:
            return _("%(what)s, which is never a webhook's") % {"what": label}
    for network, label in _PRIVATE:
        if address.version == network.version and address in network:
            if settings.WEBHOOK_ALLOW_PRIVATE:
                return None
            # Participants choose these URLs: never let them aim the server at its own
            # network (database, metadata services, the admin on localhost).
            return _(
                "%(what)s, a private or local address; the operator allows only public ones "
                "(WEBHOOK_ALLOW_PRIVATE)"
            ) % {"what": label}
    if address.is_multicast or address.is_reserved or not address.is_global:
        return _("not a public unicast address")
    return None


def _resolve(host: str, port: int) -> list[str]:
    """The addresses `host` has now (the tests' resolver stubs replace this)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass(frozen=True)
class WebhookTarget:
    """Where one delivery goes: the URL, the name in it (for the Host header and TLS),
    and the address that was checked, which is the one the connection is made to."""

    url: str
    host: str
    port: int
    address: str


def webhook_target(url: str) -> WebhookTarget:
    """Resolve `url`'s host once and check every address it gives; WebhookRefused says
    why not. The sender connects to `address` (workers.webhooks), so a name that resolves
    elsewhere a moment later (DNS rebinding) does not move the connection."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise WebhookRefused(
            _("The webhook URL must start with http:// or https:// and name a host.")
        )
    try:
        addresses = [
            ipaddress.ip_address(a.split("%", 1)[0]) for a in _resolve(parts.hostname, port)
        ]
    except (UnicodeError, OSError, ValueError):  # socket.gaierror is an OSError
        addresses = []
    if not addresses:
        raise WebhookRefused(
            _("The webhook host %(host)r does not resolve.") % {"host": parts.hostname}
        )
    for address in addresses:
        problem = webhook_address_problem(address)
        if problem:
            raise WebhookRefused(
                _("The webhook host %(host)r resolves to %(address)s: %(problem)s.")
                % {"host": parts.hostname, "address": address, "problem": problem}
            )
    return WebhookTarget(url=url, host=parts.hostname, port=port, address=str(addresses[0]))


def webhook_url_problem(url: str) -> str | None:
    """Why the platform will not POST to `url`, or None. Checked when a team registers it
    and again before every delivery (a name may resolve elsewhere later)."""
    try:
        webhook_target(url)
    except WebhookRefused as exc:
        return str(exc)
    return None


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(payload: dict) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def webhook_create(*, user, team: ParticipantTeam, challenge, url: str) -> Webhook:
    require_team_member(user, team, _("Only members of the team can manage its webhooks."))
    if not ChallengeParticipation.objects.filter(team=team, challenge=challenge).exists():
        raise WebhookRefused(_("The team does not take part in this challenge."))
    problem = webhook_url_problem(url)
    if problem:
        raise WebhookRefused(problem)
    if Webhook.objects.filter(team=team, challenge=challenge).count() >= MAX_WEBHOOKS_PER_TEAM:
        raise WebhookRefused(
            _("A team may register at most %(limit)d webhooks per challenge.")
            % {"limit": MAX_WEBHOOKS_PER_TEAM}
        )
    return Webhook.objects.create(
        team=team, challenge=challenge, url=url, secret=secrets.token_hex(32), created_by=user
    )


def webhook_delete(*, user, webhook: Webhook) -> None:
    require_team_member(user, webhook.team, _("Only members of the team can manage its webhooks."))
    webhook.delete()


def webhook_send_test(*, user, webhook: Webhook) -> WebhookDelivery:
    """What the "send test" button does: the latest round's payload with isTest true."""
    require_team_member(user, webhook.team, _("Only members of the team can test its webhooks."))
    latest = (
        Round.objects.filter(phase__challenge_id=webhook.challenge_id)
        .select_related("phase")
        .order_by("-opened_at", "-pk")
        .first()
    )
    with transaction.atomic():
        return _deliver(webhook, latest, is_test=True, phase=latest.phase if latest else None)


def round_start(*, user, phase: ChallengePhase, data_version: str = "") -> Round:
    """A host opens the phase's next round; every participating team's webhook is told."""
    require_challenge_host(user, phase.challenge, _("start a round"))
    if hasattr(phase, "tournament"):
        # A tournament round needs its live features (challenges.tournaments).
        raise WebhookRefused(
            _(
                "Phase %(phase)r is a tournament: open its rounds by uploading live "
                "features (POST .../tournament/rounds/)."
            )
            % {"phase": phase.codename}
        )
    with transaction.atomic():
        # One new number at a time per phase.
        ChallengePhase.objects.select_for_update().filter(pk=phase.pk).first()
        number = (phase.rounds.aggregate(n=Max("number"))["n"] or 0) + 1
        opened = Round.objects.create(
            phase=phase, number=number, data_version=data_version[:100], opened_by=user
        )
        _notify(opened)
    return opened


def rounds_open_due(*, now=None) -> int:
    """Round 1 of every open phase of an approved challenge that has none yet (the beat
    sweeper calls this): 'when a phase opens'. Safe to run anywhere, any number of times."""
    now = now or timezone.now()
    # A phase without dates is open with its challenge (EvalAI leaves both optional).
    starts = Q(start_date__lte=now) | Q(start_date__isnull=True, challenge__start_date__lte=now)
    starts |= Q(start_date__isnull=True, challenge__start_date__isnull=True)
    ends = Q(end_date__gt=now) | Q(end_date__isnull=True, challenge__end_date__gt=now)
    due = ChallengePhase.objects.filter(
        starts, ends, challenge__approved_by_admin=True, rounds__isnull=True
    ).filter(tournament__isnull=True)  # tournament rounds open with their live features
    opened = 0
    for phase in due:
        try:
            with transaction.atomic():
                first = Round.objects.create(phase=phase, number=1, opened_at=now)
                _notify(first)
        except IntegrityError:
            continue  # another sweeper opened it first
        opened += 1
    return opened


def webhook_deliveries_resend_stale(*, now=None) -> int:
    """Pending deliveries whose next attempt is long overdue (their message was lost with
    the broker): send them again."""
    now = now or timezone.now()
    stale = list(
        WebhookDelivery.objects.filter(
            status=Status.PENDING,
            next_attempt_at__lt=now - timedelta(seconds=settings.SWEEPER_REQUEUE_AFTER_S),
        ).values_list("pk", flat=True)[:1000]
    )
    WebhookDelivery.objects.filter(pk__in=stale).update(next_attempt_at=now)
    for delivery_id in stale:
        _send(delivery_id)
    return len(stale)


def webhook_delivery_record(
    *, delivery_id: int, status_code: int | None, error: str, seconds: float
) -> float | None:
    """Log one attempt. Returns the delay before the next one, or None when it is over
    (delivered, or out of attempts)."""
    now = timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.status != Status.PENDING:
            return None
        ok = status_code is not None and 200 <= status_code < 300
        delivery.attempts += 1
        delivery.last_status_code = status_code
        delivery.last_error = error[:2000]
        delivery.log = [
            *delivery.log,
            {
                "at": now.isoformat(),
                "status_code": status_code,
                "error": error[:500],
                "seconds": round(seconds, 3),
            },
        ]
        delay = None
        if ok:
            delivery.status, delivery.delivered_at = Status.DELIVERED, now
        elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = Status.FAILED
        else:
            delay = settings.WEBHOOK_RETRY_BASE_S * 2 ** (delivery.attempts - 1)
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        delivery.save()
    return delay


def webhook_delivery_give_up(*, delivery_id: int, reason: str) -> None:
    """No attempt is possible (the URL is no longer allowed): fail it, saying why."""
    WebhookDelivery.objects.filter(pk=delivery_id, status=Status.PENDING).update(
        status=Status.FAILED, last_error=reason[:2000]
    )


def round_notify_teams(*, opened: Round) -> None:
    """Tell every participating team's webhooks that `opened` opened (inside the caller's
    transaction; deliveries go out after it commits)."""
    _notify(opened)


def _notify(opened: Round) -> None:
    teams = ChallengeParticipation.objects.filter(challenge_id=opened.phase.challenge_id).values(
        "team_id"
    )
    for webhook in Webhook.objects.filter(
        challenge_id=opened.phase.challenge_id, is_active=True, team_id__in=teams
    ):
        _deliver(webhook, opened, is_test=False, phase=opened.phase)


def _deliver(webhook: Webhook, opened: Round | None, *, is_test: bool, phase) -> WebhookDelivery:
    trigger = uuid.uuid4().hex
    delivery = WebhookDelivery.objects.create(
        webhook=webhook,
        round=opened,
        trigger_id=trigger,
        payload={
            "roundNumber": opened.number if opened else 0,
            "dataVersion": opened.data_version if opened else "",
            "triggerId": trigger,
            "isTest": is_test,
            "challenge": webhook.challenge_id,
            "phase": phase.codename if phase else None,
        },
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: _send(delivery.pk))
    return delivery


def _send(delivery_id: int) -> None:
    current_app.send_task(DELIVER_TASK, args=[delivery_id])
