"""What hosts learn: a phase's analytics (page, API, CSV), the admins' overview in ops
status, and Prometheus metrics at /metrics, parsed with prometheus_client's own parser."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from challenges.analytics.phase import percentile
from challenges.models import (
    ChallengeParticipation,
    ParticipantTeam,
    ParticipantTeamMember,
    Submission,
)

pytestmark = pytest.mark.django_db


def burst(world, users, n: int, *, team=None) -> None:
    """`n` more submissions of a team on the test phase: finished, failed and queued."""
    phase = world.challenge.phases.get(codename="test")
    team = team or world.charlie_team
    kinds = [
        (Submission.Status.FINISHED, "", 1.5),
        (Submission.Status.FAILED, "script", None),
        (Submission.Status.QUEUED, "", None),
    ]
    Submission.objects.bulk_create(
        [
            Submission(
                phase=phase,
                team=team,
                created_by=users["charlie"],
                input_file="submissions/b.csv",
                file_name="b.csv",
                input_sha256="2" * 64,
                input_size=3,
                status=kinds[i % 3][0],
                failure_kind=kinds[i % 3][1],
                wall_time_s=kinds[i % 3][2],
                submitted_at=timezone.now() - timedelta(days=i % 2),
            )
            for i in range(n)
        ]
    )


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (
        50.0,
        90.0,
        99.0,
    )
    assert percentile([], 50) is None and percentile([3.0], 99) == 3.0


def test_a_host_reads_the_phase_analytics_as_json_csv_and_page(world, api, users, client_as):
    Submission.objects.filter(pk=world.charlie_sub.pk).update(wall_time_s=0.5)
    Submission.objects.filter(pk=world.dave_sub.pk).update(wall_time_s=2.5)
    burst(world, users, 6)
    url = f"/api/v1/challenges/{world.challenge.pk}/phases/test/analytics/"
    numbers = api("alice").get(url).json()
    assert numbers["teams_over_time"][-1]["count"] == 2
    assert numbers["participants_over_time"][-1]["count"] == 2
    by_day = {}
    for row in numbers["submissions_per_day"]:
        for status, count in row["by_status"].items():
            by_day[status] = by_day.get(status, 0) + count
    assert by_day == {"finished": 4, "failed": 2, "queued": 2}
    assert numbers["failure_classes"] == [{"failure_kind": "script", "count": 2}]
    times = numbers["evaluation_time_s"]
    assert times["count"] == 4 and times["p50"] == 1.5 and times["max"] == 2.5
    public = next(s for s in numbers["splits"] if s["split"] == "public")
    assert public["label"] == "Accuracy" and public["teams_scored"] == 2
    assert public["best_over_time"][-1]["best"] == 0.91
    assert sum(b["count"] for b in public["distribution"]) == 2
    teams = {r["team"]: r for r in numbers["last_submission_per_team"]}
    assert teams["Charlie Team"]["submissions"] == 7 and teams["Dave Team"]["submissions"] == 1
    for who in ("charlie", "dave", "bob", "erin"):
        assert api(who).get(url).status_code == 403
    table = api("alice").get(url.replace("analytics/", "analytics.csv"))
    rows = list(csv.reader(io.StringIO(table.content.decode())))
    assert rows[0] == ["section", "date", "name", "value"]
    assert ["failures", "", "script", "2"] in rows
    page = client_as("host").get(f"/host/challenges/{world.challenge.pk}/phases/test/analytics/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Charlie Team" in html and "Last submission per team" in html


def test_csv_cells_that_look_like_formulas_stay_text(world, api, users):
    team = ParticipantTeam.objects.create(name="=HYPERLINK(1)", created_by=users["erin"])
    ParticipantTeamMember.objects.create(team=team, user=users["erin"])
    ChallengeParticipation.objects.create(
        challenge=world.challenge, team=team, accepted_terms_by=users["erin"]
    )
    burst(world, users, 1, team=team)
    table = api("alice").get(f"/api/v1/challenges/{world.challenge.pk}/phases/test/analytics.csv")
    assert "'=HYPERLINK(1)" in table.content.decode()


def test_analytics_cost_the_same_queries_for_two_teams_or_twenty(world, users, django_user_model):
    from challenges.analytics.phase import phase_analytics

    phase = world.challenge.phases.get(codename="test")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            phase_analytics(phase)
        return len(queries)

    before = count()
    for i in range(18):
        user = django_user_model.objects.create_user(f"p{i}", f"p{i}@example.org", "x")
        team = ParticipantTeam.objects.create(name=f"T{i}", created_by=user)
        ParticipantTeamMember.objects.create(team=team, user=user)
        ChallengeParticipation.objects.create(
            challenge=world.challenge, team=team, accepted_terms_by=user
        )
        burst(world, users, 3, team=team)
    assert count() == before


def test_admins_see_every_challenge_in_ops_status(world, api, users):
    burst(world, users, 3)
    status = api("admin").get("/api/v1/ops/status/")
    assert status.status_code == 200
    mine = next(c for c in status.json()["challenges"] if c["challenge"] == world.challenge.pk)
    assert mine["teams"] == 2 and mine["participants"] == 2
    assert mine["submissions"]["failed"] == 1 and mine["evaluation_time_s"]["p50"] == 1.5
    assert api("alice").get("/api/v1/ops/status/").status_code == 403


# ---------------------------------------------------------------- /metrics


def scrape(client, **headers):
    response = client.get("/metrics", **headers)
    families = {}
    if response.status_code == 200:
        families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    return response, families


def test_metrics_are_off_until_a_token_or_an_address_is_configured(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "", []
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_token_or_an_allowed_address(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "s3cret", []
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "", ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.1").status_code == 403


def test_metrics_report_requests_submissions_queues_and_durations(world, users, client, settings):
    settings.METRICS_TOKEN = "s3cret"
    Submission.objects.filter(pk=world.charlie_sub.pk).update(wall_time_s=0.3)
    Submission.objects.filter(pk=world.dave_sub.pk).update(wall_time_s=40.0)
    burst(world, users, 3)
    client.get("/")  # a request to count
    response, families = scrape(client, HTTP_AUTHORIZATION="Bearer s3cret")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    statuses = {s.labels["status"]: s.value for s in families["evalserver_submissions"].samples}
    assert statuses["finished"] == 3 and statuses["failed"] == 1 and statuses["queued"] == 1
    assert statuses["running"] == 1 and statuses["cancelled"] == 0
    durations = {
        (s.name, s.labels.get("le")): s.value
        for s in families["evalserver_evaluation_duration_seconds"].samples
    }
    assert durations[("evalserver_evaluation_duration_seconds_bucket", "0.5")] == 1
    assert durations[("evalserver_evaluation_duration_seconds_bucket", "2.5")] == 2
    assert durations[("evalserver_evaluation_duration_seconds_bucket", "+Inf")] == 3
    assert durations[("evalserver_evaluation_duration_seconds_count", None)] == 3
    assert durations[("evalserver_evaluation_duration_seconds_sum", None)] == pytest.approx(41.8)
    queues = {s.labels["queue"] for s in families["evalserver_queue_depth"].samples}
    assert settings.CELERY_TASK_DEFAULT_QUEUE in queues or not queues
    requests = [
        s
        for s in families["evalserver_http_requests"].samples
        if s.name == "evalserver_http_requests_total" and s.labels["route"] == "home"
    ]
    assert requests and requests[0].value >= 1 and requests[0].labels["status"] == "2xx"
