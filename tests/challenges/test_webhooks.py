"""Rounds and round webhooks: who may register and start what, and signed deliveries
that a real worker sends to a server the test runs on 127.0.0.1 (never anywhere else)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from challenges.models import Round, Webhook, WebhookDelivery
from challenges.services.webhooks import (
    rounds_open_due,
    webhook_body,
    webhook_signature,
    webhook_url_problem,
)
from tests.workers.pipeline_helpers import (
    GOOD_EVALUATE,
    load_approved,
    participate,
    script_bundle,
)


class Receiver:
    """A bot's endpoint on loopback: answers with the next code of `codes` (then 200)."""

    def __init__(self, codes=()):
        self.codes = list(codes)
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 20) -> list[tuple[dict, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {count} requests came"
            time.sleep(0.02)
        return self.requests

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def wait_delivery(pk: int, timeout: float = 20) -> WebhookDelivery:
    deadline = time.monotonic() + timeout
    while True:
        delivery = WebhookDelivery.objects.get(pk=pk)
        if delivery.status != WebhookDelivery.Status.PENDING:
            return delivery
        assert time.monotonic() < deadline, delivery.log
        time.sleep(0.05)


# ---------------------------------------------------------------- without a worker


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.org/hook", "must start with http"),
        ("http:///nohost", "must start with http"),
        ("http://127.0.0.1:8000/hook", "private or local address"),
        ("http://10.1.2.3/hook", "private or local address"),
        ("http://169.254.169.254/latest/meta-data", "private or local address"),
        ("http://[::1]/hook", "private or local address"),
    ],
)
def test_webhook_urls_aimed_at_the_servers_own_network_are_refused(settings, url, fragment):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert fragment in webhook_url_problem(url)


def test_a_public_address_is_allowed_and_operators_may_allow_private_ones(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert webhook_url_problem("https://93.184.216.34/hook") is None  # resolved, not contacted
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert webhook_url_problem("http://127.0.0.1:9/hook") is None


def test_the_signature_is_hmac_sha256_of_the_exact_body():
    body = webhook_body({"roundNumber": 3, "isTest": False, "triggerId": "t"})
    assert body == b'{"isTest":false,"roundNumber":3,"triggerId":"t"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert webhook_signature("s3cret", body) == f"sha256={expected}"


@pytest.fixture
def challenge(db, users, host_teams, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    return challenge


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("bob", 403), ("charlie", 201), ("alice", 403), ("admin", 403)],
)
def test_only_a_participating_team_registers_webhooks(api, challenge, who, status):
    response = api(who).post(
        f"/api/v1/challenges/{challenge.pk}/webhooks/", {"url": "http://127.0.0.1:9/h"}
    )
    assert response.status_code == status, response.content
    if status == 201:
        assert len(response.json()["secret"]) == 64


def test_bad_webhook_urls_get_a_400_that_says_why(api, challenge, settings):
    url = f"/api/v1/challenges/{challenge.pk}/webhooks/"
    response = api("charlie").post(url, {"url": "not a url"})
    assert response.status_code == 400 and "url" in response.json()
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = api("charlie").post(url, {"url": "http://127.0.0.1:9/h"})
    assert response.status_code == 400 and "private or local" in response.json()["detail"]


def test_other_users_cannot_see_test_or_delete_a_teams_webhook(api, challenge, users):
    hook_id = (
        api("charlie")
        .post(f"/api/v1/challenges/{challenge.pk}/webhooks/", {"url": "http://127.0.0.1:9/h"})
        .json()["id"]
    )
    for who in ("bob", "alice", "admin"):
        assert api(who).get(f"/api/v1/webhooks/{hook_id}/deliveries/").status_code == 404
        assert api(who).post(f"/api/v1/webhooks/{hook_id}/test/").status_code == 404
        assert api(who).delete(f"/api/v1/webhooks/{hook_id}/").status_code == 404
        assert api(who).get(f"/api/v1/challenges/{challenge.pk}/webhooks/").json() == []
    assert api("charlie").delete(f"/api/v1/webhooks/{hook_id}/").status_code == 204
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("bob", 403), ("charlie", 403), ("alice", 201), ("admin", 201)],
)
def test_only_hosts_start_rounds(api, challenge, who, status):
    url = f"/api/v1/challenges/{challenge.pk}/phases/probe/rounds/"
    response = api(who).post(url, {"data_version": "v2"})
    assert response.status_code == status, response.content
    if status == 201:
        assert response.json()["data_version"] == "v2"
    assert api(None).get(url).status_code == 200


def test_a_phase_opens_its_first_round_once(challenge):
    phase = challenge.phases.get()
    phase.start_date = timezone.now() + timedelta(hours=1)
    phase.save()
    assert rounds_open_due() == 0
    assert rounds_open_due(now=phase.start_date + timedelta(seconds=1)) == 1
    assert rounds_open_due(now=phase.start_date + timedelta(seconds=2)) == 0
    assert list(Round.objects.values_list("number", flat=True)) == [1]


# ---------------------------------------------------------------- with a real worker


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_new_round_reaches_the_teams_bot_signed(
    pipeline, api, users, host_teams, receiver, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # as in the worker: the bot runs on loopback
    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    hook = api("charlie").post(
        f"/api/v1/challenges/{challenge.pk}/webhooks/", {"url": receiver.url}
    )
    assert hook.status_code == 201, hook.content
    secret = hook.json()["secret"]

    response = api("alice").post(
        f"/api/v1/challenges/{challenge.pk}/phases/probe/rounds/", {"data_version": "2026-11"}
    )
    assert response.status_code == 201
    ((headers, body),) = receiver.wait(1)
    payload = json.loads(body)
    assert payload["roundNumber"] == 1 and payload["dataVersion"] == "2026-11"
    assert payload["isTest"] is False and payload["phase"] == "probe"
    assert payload["challenge"] == challenge.pk and len(payload["triggerId"]) == 32
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Evalserver-Signature"] == f"sha256={expected}"

    delivery = wait_delivery(WebhookDelivery.objects.get().pk)
    assert delivery.status == "delivered" and delivery.attempts == 1
    log = api("charlie").get(f"/api/v1/webhooks/{hook.json()['id']}/deliveries/").json()
    assert log[0]["status"] == "delivered" and log[0]["log"][0]["status_code"] == 200


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_failed_deliveries_are_retried_with_backoff_and_every_attempt_logged(
    pipeline, api, users, host_teams, receiver, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    hook_id = (
        api("charlie")
        .post(f"/api/v1/challenges/{challenge.pk}/webhooks/", {"url": receiver.url})
        .json()["id"]
    )
    receiver.codes = [500, 503]
    sent = api("charlie").post(f"/api/v1/webhooks/{hook_id}/test/")
    assert sent.status_code == 202 and sent.json()["payload"]["isTest"] is True
    delivery = wait_delivery(sent.json()["id"])
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert [entry["status_code"] for entry in delivery.log] == [500, 503, 200]
    assert [json.loads(body)["triggerId"] for _, body in receiver.requests] == [
        delivery.trigger_id
    ] * 3

    # A bot that never answers well: the delivery ends failed after WEBHOOK_MAX_ATTEMPTS (4).
    receiver.codes = [500] * 10
    sent = api("charlie").post(f"/api/v1/webhooks/{hook_id}/test/")
    delivery = wait_delivery(sent.json()["id"])
    assert delivery.status == "failed" and delivery.attempts == 4
    assert "answered 500" in delivery.last_error
