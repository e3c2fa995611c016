"""Issue 22: a webhook to a multicast address was accepted, and the address was checked
before each delivery but the connection resolved the name again, so a name answering
differently between check and connect (DNS rebinding) reached an internal host. Only
global unicast addresses pass now (this host's networks only where the operator allows
them, as the tests do for 127.0.0.1), and the connection goes to the checked address.

No test here sends traffic anywhere but 127.0.0.1: public addresses are checked, and the
connection's address is read from the adapter, never dialled."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
import urllib3
from django.utils import timezone

from challenges.models import Webhook, WebhookDelivery
from challenges.services import webhooks as service
from challenges.services.webhooks import WebhookRefused, webhook_target, webhook_url_problem
from tests.challenges.test_webhooks import Receiver
from workers.webhooks import PinnedAdapter, deliver, pinned_session

PUBLIC = "93.184.216.34"

NEVER = [
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104  (an address refused, not bound)
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.10", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("[ff02::1]", "multicast"),
    ("[2001:db8::1]", "documentation"),
    ("[::]", "unspecified"),
    ("[64:ff9b::7f00:1]", "NAT64"),
    ("[2002:7f00:1::1]", "6to4"),
]
LOCAL = [
    ("127.0.0.1", "loopback"),
    ("127.1.2.3", "loopback"),
    ("[::1]", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("10.1.2.3", "private"),
    ("172.20.0.1", "private"),
    ("192.168.1.1", "private"),
    ("[fd00::1]", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("169.254.169.254", "link-local"),
    ("[fe80::1]", "link-local"),
]


@pytest.mark.parametrize(("host", "what"), NEVER)
def test_addresses_that_are_no_ones_webhook_are_refused_even_when_private_ones_are_allowed(
    settings, host, what
):
    for allow in (False, True):
        settings.WEBHOOK_ALLOW_PRIVATE = allow
        problem = webhook_url_problem(f"http://{host}/hook")
        assert problem and what in problem, (allow, problem)


@pytest.mark.parametrize(("host", "what"), LOCAL)
def test_this_hosts_networks_are_refused_unless_the_operator_allows_them(settings, host, what):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    problem = webhook_url_problem(f"http://{host}:8000/hook")
    assert problem and what in problem and "private or local" in problem
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert webhook_url_problem(f"http://{host}:8000/hook") is None


def test_the_escape_hatch_is_off_by_default(monkeypatch):
    from evalserver.settings import envbool

    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE", raising=False)
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_FILE", raising=False)
    # The expression settings.py evaluates, with nothing in the environment.
    assert envbool("WEBHOOK_ALLOW_PRIVATE", False) is False
    assert (
        'WEBHOOK_ALLOW_PRIVATE = envbool("WEBHOOK_ALLOW_PRIVATE", False)'
        in (Path(__file__).resolve().parents[2] / "evalserver" / "settings.py").read_text()
    )


def test_a_name_with_one_bad_address_among_good_ones_is_refused(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(service, "_resolve", lambda host, port: [PUBLIC, "224.0.0.5"])
    with pytest.raises(WebhookRefused, match="hook.example.* resolves to 224.0.0.5: a multicast"):
        webhook_target("https://hook.example/h")
    monkeypatch.setattr(service, "_resolve", lambda host, port: [PUBLIC])
    assert webhook_target("https://hook.example/h").address == PUBLIC


def test_a_public_address_is_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    target = webhook_target(f"https://{PUBLIC}/hook")  # an IP literal: resolved locally
    assert (target.address, target.port) == (PUBLIC, 443)


class Rebinding:
    """A resolver stub: a public address to the first question, loopback afterwards."""

    def __init__(self, first: str, later: str):
        self.answers, self.later, self.calls = [first], later, 0

    def __call__(self, host, port):
        self.calls += 1
        return [self.answers.pop(0) if self.answers else self.later]


def test_the_adapter_connects_to_the_checked_address_with_the_name_for_tls(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    resolver = Rebinding(PUBLIC, "127.0.0.1")
    monkeypatch.setattr(service, "_resolve", resolver)
    target = webhook_target("https://hook.example/round")
    assert service._resolve("hook.example", 443) == ["127.0.0.1"]  # the name has moved
    request = pinned_session(target).prepare_request(
        __import__("requests").Request("POST", target.url, data=b"{}")
    )
    adapter = PinnedAdapter(target)
    pool = adapter.get_connection_with_tls_context(request, verify=True)
    # A pool is no connection: nothing was dialled.
    assert (pool.host, pool.port) == (PUBLIC, 443)
    assert pool.conn_kw["server_hostname"] == "hook.example"
    assert pool.assert_hostname == "hook.example"


@pytest.mark.django_db
def test_a_delivery_goes_to_the_address_checked_though_the_name_rebinds(
    world, users, settings, monkeypatch
):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    resolver = Rebinding(PUBLIC, "127.0.0.1")
    monkeypatch.setattr(service, "_resolve", resolver)
    seen = []

    def urlopen(pool, method, url, body=None, headers=None, **kwargs):
        # Stands in for the network: records where the pool would connect, answers 200.
        seen.append((pool.host, pool.port, dict(headers or {}), dict(pool.conn_kw)))
        return urllib3.HTTPResponse(
            body=io.BytesIO(b"ok"), status=200, headers={}, preload_content=False
        )

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen", urlopen)
    monkeypatch.setattr(socket, "create_connection", None)  # any real dial would fail loudly
    hook = Webhook.objects.create(
        team=world.charlie_team,
        challenge=world.challenge,
        url="https://hook.example/round",
        secret="s" * 64,
        created_by=users["charlie"],
    )
    delivery = WebhookDelivery.objects.create(
        webhook=hook, trigger_id="t", payload={"isTest": True}, next_attempt_at=timezone.now()
    )
    assert deliver(delivery.pk) is None
    ((host, port, headers, conn_kw),) = seen
    assert (host, port) == (PUBLIC, 443)
    assert headers["Host"] == "hook.example"
    assert conn_kw["server_hostname"] == "hook.example"
    assert resolver.calls == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED


@pytest.mark.django_db
def test_a_real_delivery_on_loopback_carries_the_name_and_resolves_once(
    world, users, settings, monkeypatch
):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the explicit escape hatch the tests use
    resolver = Rebinding("127.0.0.1", "10.9.9.9")  # never dialled: asserted below
    monkeypatch.setattr(service, "_resolve", resolver)
    receiver = Receiver()
    try:
        port = receiver.server.server_address[1]
        hook = Webhook.objects.create(
            team=world.charlie_team,
            challenge=world.challenge,
            url=f"http://hook.test:{port}/hook",
            secret="s" * 64,
            created_by=users["charlie"],
        )
        delivery = WebhookDelivery.objects.create(
            webhook=hook, trigger_id="t", payload={"isTest": True}, next_attempt_at=timezone.now()
        )
        assert deliver(delivery.pk) is None
        ((headers, body),) = receiver.wait(1)
    finally:
        receiver.close()
    assert headers["Host"] == f"hook.test:{port}"
    assert resolver.calls == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
