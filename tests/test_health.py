"""/healthz for container healthchecks, and the operators' status endpoint."""

from __future__ import annotations

import pytest

from challenges.models import Submission

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_a_known_host_or_https(client, settings):
    settings.ALLOWED_HOSTS = ["comp.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    # Every other path still checks the host.
    assert client.get("/", HTTP_HOST="127.0.0.1:8000").status_code == 400


def test_healthz_says_503_when_the_database_is_down(client, monkeypatch):
    from django.db import OperationalError

    from evalserver import health

    class Down:
        def cursor(self):
            raise OperationalError("could not connect to server")

    monkeypatch.setattr(health, "connection", Down())
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "error"


def test_a_view_that_cannot_reach_the_database_answers_503_with_retry_after(client, monkeypatch):
    """While PostgreSQL restarts: try again, not a 500 (tests/drills has the real restart)."""
    from django.db import OperationalError

    from challenges.api.views import ChallengeList

    def down(self, request):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ChallengeList, "get", down)
    response = client.get("/api/v1/challenges/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "try again" in response.json()["detail"]


def test_other_errors_of_a_view_are_not_taken_for_an_unavailable_database(client, monkeypatch):
    from challenges.api.views import ChallengeList

    def broken(self, request):
        raise ValueError("a bug")

    monkeypatch.setattr(ChallengeList, "get", broken)
    client.raise_request_exception = False
    assert client.get("/api/v1/challenges/").status_code == 500


@pytest.mark.parametrize(("who", "status"), [(None, 401), ("charlie", 403), ("alice", 403)])
def test_ops_status_is_for_staff_only(api, who, status):
    assert api(who).get("/api/v1/ops/status/").status_code == status


def test_ops_status_counts_submissions_and_reports_queue_and_workers(api, settings, monkeypatch):
    from evalserver import health

    monkeypatch.setattr(health, "workers_alive", lambda timeout=1.0: ["w1@host"])
    body = api("admin").get("/api/v1/ops/status/").json()
    assert body["submissions"] == {} and body["oldest_waiting_s"] is None
    assert body["workers"] == ["w1@host"]
    assert body["queue"]["name"] == settings.CELERY_TASK_DEFAULT_QUEUE
    assert Submission.objects.count() == 0
