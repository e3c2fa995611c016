"""Finding 1: a participant whose submission failed read the host script's traceback,
server paths and source lines. Now they read a summary; hosts and admins read it all."""

from __future__ import annotations

import pytest

from challenges.failure_text import participant_failure_text
from challenges.models import Submission

pytestmark = pytest.mark.django_db

SCRIPT_PATH = "/srv/evalserver/var/cache/scripts/c1-v1-3f2a/evaluation_script/main.py"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    f'  File "{SCRIPT_PATH}", line 42, in evaluate\n'
    "    truth = SECRET_LABELS[row]\n"
    "ValueError: bad row\n"
)


@pytest.fixture
def failed(world, users):
    sub = world.charlie_sub
    Submission.objects.filter(pk=sub.pk).update(
        status=Submission.Status.FAILED,
        failure_kind="exception",
        failure_message=f"evaluate() raised ValueError: cannot open {SCRIPT_PATH}: bad row",
        traceback=TRACEBACK,
        stdout="host-script-stdout",
        stderr="host-script-stderr",
    )
    sub.refresh_from_db()
    return sub


def test_it_removes_paths_frames_and_source_lines_from_the_participant_text():
    text = participant_failure_text(f"evaluate() raised ValueError: x\n{TRACEBACK}")
    assert "/srv" not in text and "SECRET_LABELS" not in text and "line 42" not in text
    assert "evaluate() raised ValueError: x" in text and "ValueError: bad row" in text
    assert participant_failure_text(f"open {SCRIPT_PATH} failed") == "open <path>/main.py failed"
    assert participant_failure_text("see https://example.org/a/b") == "see https://example.org/a/b"


def test_it_bounds_the_participant_text_to_1000_characters():
    text = participant_failure_text("evaluate() raised ValueError: " + "y" * 5000)
    assert len(text) == 1000 and text.endswith("…")


def test_it_shows_the_participant_a_summary_over_the_api(failed, api):
    body = api("charlie").get(f"/api/v1/submissions/{failed.pk}/").json()
    assert "traceback" not in body and body["links"] == {}
    assert body["failure_kind"] == "exception"
    assert body["failure_message"] == (
        "evaluate() raised ValueError: cannot open <path>/main.py: bad row"
    )
    listed = api("charlie").get(
        f"/api/v1/challenges/{failed.phase.challenge_id}/phases/test/submissions/"
    )
    (row,) = [r for r in listed.json() if r["id"] == failed.pk]
    assert "/srv" not in row["failure_message"]
    for stream in ("stdout", "stderr"):
        response = api("charlie").get(f"/api/v1/submissions/{failed.pk}/{stream}/")
        assert response.status_code == 403


@pytest.mark.parametrize("who", ["alice", "admin"])
def test_it_shows_hosts_and_admins_everything_over_the_api(failed, api, who):
    body = api(who).get(f"/api/v1/submissions/{failed.pk}/").json()
    assert body["traceback"] == TRACEBACK and SCRIPT_PATH in body["failure_message"]
    stdout = api(who).get(f"/api/v1/submissions/{failed.pk}/stdout/")
    assert stdout.content == b"host-script-stdout"


def test_it_shows_stdout_and_stderr_when_the_phase_opts_in_but_never_the_traceback(failed, api):
    failed.phase.show_logs_to_participants = True
    failed.phase.save()
    body = api("charlie").get(f"/api/v1/submissions/{failed.pk}/").json()
    assert "traceback" not in body and "/srv" not in body["failure_message"]
    stderr = api("charlie").get(f"/api/v1/submissions/{failed.pk}/stderr/")
    assert stderr.status_code == 200 and stderr.content == b"host-script-stderr"
    failed.phase.disable_logs = True
    failed.phase.save()
    assert api("charlie").get(f"/api/v1/submissions/{failed.pk}/stderr/").status_code == 403


def test_it_shows_the_participant_a_summary_on_the_pages(failed, client_as):
    client = client_as("participant")
    for url in (
        f"/submissions/{failed.pk}/",
        f"/challenges/{failed.phase.challenge_id}/submissions/",
    ):
        html = client.get(url).content.decode()
        assert "cannot open &lt;path&gt;/main.py" in html, url
        assert "/srv/" not in html and "SECRET_LABELS" not in html and "host-script" not in html
    # The failure class, beside the message.
    assert "[exception]" in client.get(f"/submissions/{failed.pk}/").content.decode()


def test_it_shows_the_host_everything_on_the_submission_page(failed, client_as):
    html = client_as("host").get(f"/submissions/{failed.pk}/").content.decode()
    assert SCRIPT_PATH in html and "SECRET_LABELS" in html and "host-script-stderr" in html


def test_it_reads_the_bundle_key_that_opts_a_phase_in(users, host_teams):
    from tests.workers.pipeline_helpers import GOOD_EVALUATE, load_approved, script_bundle

    challenge = load_approved(
        script_bundle(GOOD_EVALUATE, show_logs_to_participants=True), users, host_teams["alice"]
    )
    assert challenge.phases.get().show_logs_to_participants is True
