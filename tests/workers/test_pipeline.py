"""The pipeline with real parts: PostgreSQL, Redis and a `celery worker` process.

Submissions go in through the REST API, a real worker evaluates them in its sandbox,
and the tests read the outcome from the database.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from challenges.models import ChallengePhase, Submission, SubmissionResult
from starters.build import sample_submissions
from tests.workers.pipeline_helpers import (
    GOOD_EVALUATE,
    load_approved,
    participate,
    run_local,
    script_bundle,
    submit,
    wait_final,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def evaluate_local(zip_path, phase, submission) -> dict:
    return run_local(zip_path, phase, submission)["result"]


@pytest.mark.parametrize("starter", ["tabular_classification", "numerai_regression"])
def test_each_starter_sample_finishes_with_the_numbers_evaluate_local_gives(
    pipeline, starter, starter_zips, starter_dir, users, host_teams, api
):
    challenge = load_approved(starter_zips[starter], users, host_teams["alice"])
    participate(users["charlie"], challenge)
    samples = sample_submissions(starter_dir)[starter]
    ids = {}
    for phase, path in samples.items():
        response = submit(api("charlie"), challenge, phase, path.read_bytes(), name=path.name)
        assert response.status_code == 201, response.content
        assert response.json()["status"] in {"submitted", "queued", "running", "finished"}
        ids[phase] = response.json()["id"]
    rows = {s.phase.codename: s for s in wait_final(list(ids.values()), timeout=90)}
    for phase, path in samples.items():
        submission = rows[phase]
        assert submission.status == Submission.Status.FINISHED, (
            submission.failure_message,
            submission.traceback,
        )
        expected = evaluate_local(starter_zips[starter], phase, path)
        stored = {
            r.phase_split.dataset_split.codename: r.scores
            for r in SubmissionResult.objects.filter(
                submission=submission, is_active=True
            ).select_related("phase_split__dataset_split")
        }
        assert stored.keys() == expected.keys()
        for split, scores in expected.items():
            assert stored[split] == pytest.approx(scores, rel=1e-9)
        # The reproducibility record.
        record = submission.execution
        assert record["submission_sha256"] == submission.input_sha256
        assert record["script_sha256"] == challenge.current_script.sha256
        assert record["annotation_sha256"] == submission.phase.test_annotation_sha256
        assert (
            record["python"]
            and record["pandas"]
            and record["wall_s"] > 0
            and record["peak_memory_kb"] > 0
        )
        assert "/" in record["worker"]
        # And the leaderboard of every split shows the team's row with those numbers.
        for split, scores in expected.items():
            board = api("alice").get(
                f"/api/v1/challenges/{challenge.pk}/phases/{phase}/splits/{split}/leaderboard/",
                {"scope": "all"},
            )
            assert board.status_code == 200, board.content
            (row,) = board.json()["rows"]
            labels = board.json()["labels"]
            assert row["rank"] == 1 and row["submission_id"] == submission.pk
            assert row["scores"] == pytest.approx([scores.get(label) for label in labels])


def test_the_participant_sees_public_splits_and_logs_but_not_host_data(
    pipeline, users, host_teams, api
):
    challenge = load_approved(
        script_bundle(GOOD_EVALUATE, show_logs_to_participants=True), users, host_teams["alice"]
    )
    participate(users["charlie"], challenge)
    sid = submit(api("charlie"), challenge, "probe", "40", name="guess.txt").json()["id"]
    wait_final([sid])
    mine = api("charlie").get(f"/api/v1/submissions/{sid}/").json()
    assert mine["status"] == "finished"
    assert [r["split"] for r in mine["results"]] == ["main"]
    assert mine["results"][0]["scores"]["Score"] == pytest.approx(1 / 3)
    assert "submission_metadata" not in mine and "execution" not in mine
    assert api("charlie").get(mine["links"]["stdout"]).content.decode().strip() == f"scored {sid}"
    host = api("alice").get(f"/api/v1/submissions/{sid}/").json()
    assert {r["split"] for r in host["results"]} == {"main", "hidden"} and host["execution"][
        "script_version"
    ] == 1
    for outsider in ("bob", None):
        assert api(outsider).get(f"/api/v1/submissions/{sid}/").status_code in (401, 404)
    participate(users["bob"], challenge)  # a participant of another team
    assert api("bob").get(f"/api/v1/submissions/{sid}/").status_code == 404


def test_fifty_concurrent_uploads_against_a_quota_of_five_accept_exactly_five(
    pipeline, users, host_teams, api
):
    challenge = load_approved(
        script_bundle(GOOD_EVALUATE, max_submissions_per_day=5), users, host_teams["alice"]
    )
    participate(users["charlie"], challenge)
    barrier = threading.Barrier(50)
    statuses: list[int] = []
    bodies: list[dict] = []
    lock = threading.Lock()

    def one():
        client = api("charlie")
        barrier.wait()
        try:
            response = submit(client, challenge, "probe", "41", name="guess.txt")
            with lock:
                statuses.append(response.status_code)
                bodies.append(response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(set(statuses)) == [201, 429], statuses
    assert statuses.count(201) == 5
    refusals = [b for b in bodies if "quota" in b]
    assert len(refusals) == 45 and all(b["quota"] == "per_day" for b in refusals)
    assert "daily limit of 5" in refusals[0]["detail"] and "resets at" in refusals[0]["detail"]
    assert Submission.objects.filter(phase__challenge=challenge).count() == 5
    quota = api("charlie").get(f"/api/v1/challenges/{challenge.pk}/phases/probe/quota/").json()
    assert quota["remaining"] == 0


def test_a_challenge_approved_while_the_worker_runs_is_evaluated_within_five_seconds(
    pipeline, users, host_teams, api
):
    # The worker has been running since before this challenge existed.
    assert " ready." in pipeline.log()
    start = time.monotonic()
    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    sid = submit(api("charlie"), challenge, "probe", "42", name="guess.txt").json()["id"]
    (submission,) = wait_final([sid], timeout=5)
    assert submission.status == Submission.Status.FINISHED
    assert time.monotonic() - start < 5


HOSTILE = """
import json, os, socket, time

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    what = open(user_submission_file).read().strip()
    main = {"main": {"Score": 1.0, "Other": 2.0}}
    ok = [main, {"hidden": {"Score": 0.5, "Other": 2.0}}]
    if what == "loop":
        while True:
            pass
    if what == "memory":
        hog = bytearray(8 * 1024 ** 3)
        return {"result": ok}
    if what == "fork":
        while True:
            os.fork()
    if what.startswith("net:"):
        socket.create_connection(("127.0.0.1", int(what[4:])), timeout=3)
        return {"result": ok}
    if what == "env":
        found = " ".join(sorted(os.environ))
        print(found)
        leaked = any(k in os.environ for k in ("DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL"))
        return {"result": [{"main": {"Score": float(leaked), "Other": float(len(os.environ))}}, ok[1]]}
    if what == "raise":
        raise ValueError("column 'label' is missing from your file")
    if what == "unknown_split":
        return {"result": [{"nope": {"Score": 1, "Other": 1}}]}
    if what == "missing_label":
        return {"result": [{"main": {"Score": 1}}, ok[1]]}
    if what == "non_numeric":
        return {"result": [{"main": {"Score": "high", "Other": 1}}]}
    if what == "no_result":
        return {"submission_result": "done"}
    if what == "partial":
        return {"result": [main]}
    if what.startswith("unix:"):
        client = socket.socket(socket.AF_UNIX)
        client.connect(what[5:])  # a local service's socket, e.g. PostgreSQL's under /run
        client.sendall(b"ping")
        return {"result": ok}
    if what.startswith("beat:"):
        # A heartbeat the test can watch from outside through a channel the sandbox allows
        # every child, wherever the checkout and /tmp are: its own name in the process
        # table (TOKEN and a count). It stops when the child is killed.
        # (prctl, not /proc/self/comm: a child that is not dumpable does not own that file.)
        import ctypes

        set_name = ctypes.CDLL(None).prctl
        beats = 0
        while True:
            beats += 1
            set_name(15, (what[5:] + str(beats)).encode(), 0, 0, 0)  # PR_SET_NAME
            time.sleep(0.05)
    return {"result": ok}
"""


@pytest.fixture
def hostile(pipeline, users, host_teams):
    challenge = load_approved(
        script_bundle(
            HOSTILE,
            title="Hostile",
            resources={"time_limit_s": 4, "memory_mb": 1024},
            is_partial_submission_evaluation_enabled=True,
        ),
        users,
        host_teams["alice"],
    )
    participate(users["charlie"], challenge)
    return challenge


def run_hostile(api, challenge, what: str, timeout: float = 60) -> Submission:
    response = submit(api("charlie"), challenge, "probe", what, name="what.txt")
    assert response.status_code == 201, response.content
    (submission,) = wait_final([response.json()["id"]], timeout=timeout)
    return submission


@pytest.mark.parametrize(
    ("what", "kind", "fragment"),
    [
        ("loop", "timeout", "time limit of 4 s"),
        ("memory", "memory", "memory limit of 1024 MB"),
        ("fork", "processes", "processes allowed"),
        ("raise", "exception", "column 'label' is missing"),
        ("unknown_split", "result", "split 'nope', which is not a split of this phase"),
        ("non_numeric", "result", "'high', not a number"),
        ("no_result", "result", "no 'result' key"),
    ],
)
def test_hostile_evaluates_fail_with_a_message_and_the_worker_serves_on(
    hostile, api, what, kind, fragment
):
    submission = run_hostile(api, hostile, what)
    assert submission.status == Submission.Status.FAILED
    assert submission.failure_kind == kind, submission.failure_message
    assert fragment in submission.failure_message
    assert not submission.results.exists()
    after = run_hostile(api, hostile, "fine")
    assert after.status == Submission.Status.FINISHED


def test_a_result_lacking_a_label_finishes_with_that_cell_empty_and_unranked(hostile, api):
    lacking = run_hostile(api, hostile, "missing_label")
    assert lacking.status == Submission.Status.FINISHED, lacking.failure_message
    main = lacking.results.get(phase_split__dataset_split__codename="main")
    assert main.scores == {"Score": 1.0}
    board = api("charlie").get(
        f"/api/v1/challenges/{hostile.pk}/phases/probe/splits/main/leaderboard/",
        {"order_by": "Other"},
    )
    [row] = board.json()["rows"]
    assert (row["rank"], row["scores"], row["display"][1]) == (None, [1.0, None], "")


def test_a_partial_result_is_kept_where_the_phase_allows_it(hostile, api):
    submission = run_hostile(api, hostile, "partial")
    assert submission.status == Submission.Status.PARTIALLY_EVALUATED
    assert [r.phase_split.dataset_split.codename for r in submission.results.all()] == ["main"]


def test_evaluate_cannot_reach_a_server_on_loopback(hostile, api):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        submission = run_hostile(api, hostile, f"net:{port}")
        assert (
            submission.status == Submission.Status.FAILED and submission.failure_kind == "network"
        )
        assert "network" in submission.failure_message
        with pytest.raises(TimeoutError):
            server.accept()  # nobody ever connected
    finally:
        server.close()


def test_evaluate_cannot_reach_local_services_through_unix_sockets(hostile, api):
    """A PostgreSQL trusting local connections listens on /run/postgresql: the network
    namespace does not cover Unix sockets, the empty /run of the sandbox does."""
    if os.geteuid() != 0:
        pytest.skip("the worker hides /run only when it runs as root, as in the image")
    path = Path(f"/run/evalserver-test-{os.getpid()}.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    path.chmod(0o777)  # anyone may connect: only the mount namespace stands in the way
    server.listen(8)
    server.settimeout(0.5)
    try:
        submission = run_hostile(api, hostile, f"unix:{path}")
        assert submission.status == Submission.Status.FAILED, submission.failure_message
        assert "No such file or directory" in submission.failure_message
        with pytest.raises(TimeoutError):
            server.accept()  # nobody got through
    finally:
        server.close()
        path.unlink()


def test_evaluate_sees_no_secrets_in_its_environment(hostile, api):
    submission = run_hostile(api, hostile, "env")
    assert submission.status == Submission.Status.FINISHED
    score = submission.results.get(phase_split__dataset_split__codename="main").scores
    assert score["Score"] == 0.0  # no DATABASE_URL, SECRET_KEY or CELERY_BROKER_URL
    assert "DATABASE_URL" not in submission.stdout and "SECRET_KEY" not in submission.stdout


def test_a_failure_traceback_reaches_the_host_and_a_summary_the_participant(hostile, api):
    submission = run_hostile(api, hostile, "raise")
    host = api("alice").get(f"/api/v1/submissions/{submission.pk}/").json()
    assert "ValueError" in host["traceback"]
    mine = api("charlie").get(f"/api/v1/submissions/{submission.pk}/").json()
    assert "traceback" not in mine and "evaluate() raised ValueError" in mine["failure_message"]
    ChallengePhase.objects.filter(pk=submission.phase_id).update(
        show_logs_to_participants=True, disable_logs=True
    )
    hidden = api("charlie").get(f"/api/v1/submissions/{submission.pk}/").json()
    assert "traceback" not in hidden and hidden["links"] == {}
    assert api("charlie").get(f"/api/v1/submissions/{submission.pk}/stdout/").status_code == 403
    assert "column 'label' is missing" in hidden["failure_message"]


def test_host_rerun_makes_a_new_attempt_and_rescore_reruns_the_phase(
    pipeline, users, host_teams, api
):
    challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    sid = submit(api("charlie"), challenge, "probe", "40", name="guess.txt").json()["id"]
    wait_final([sid])
    assert api("charlie").post(f"/api/v1/submissions/{sid}/rerun/").status_code == 403
    response = api("alice").post(f"/api/v1/submissions/{sid}/rerun/")
    assert response.status_code == 200 and response.json()["attempt"] == 2
    (submission,) = wait_final([sid])
    assert submission.status == Submission.Status.FINISHED and submission.attempt == 2
    results = SubmissionResult.objects.filter(submission=submission)
    assert {(r.attempt, r.is_active) for r in results} == {(1, False), (2, True)}
    rescore = api("alice").post(f"/api/v1/challenges/{challenge.pk}/phases/probe/rescore/")
    assert rescore.json() == {"rerun": 1}
    (submission,) = wait_final([sid])
    assert submission.attempt == 3 and submission.results.filter(is_active=True).count() == 2


@pytest.fixture
def patient(pipeline, users, host_teams):
    """The hostile script with a time limit long enough that only a cancel stops it."""
    challenge = load_approved(
        script_bundle(HOSTILE, title="Patient", resources={"time_limit_s": 60}),
        users,
        host_teams["alice"],
    )
    participate(users["charlie"], challenge)
    return challenge


@pytest.fixture
def heartbeat():
    """A name for one evaluation's heartbeat (short: a process name has 15 characters)."""
    return f"hb{uuid.uuid4().hex[:6]}"


def _beats(token: str) -> int:
    """The last beat of the process named TOKEN<count>; 0 when none runs."""
    seen = 0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue  # gone meanwhile
        if name.startswith(token) and name[len(token) :].isdigit():
            seen = max(seen, int(name[len(token) :]))
    return seen


def test_cancel_by_owner_stops_a_running_evaluation(patient, api, heartbeat):
    what = f"beat:{heartbeat}"
    sid = submit(api("charlie"), patient, "probe", what, name="what.txt").json()["id"]
    deadline = time.monotonic() + 20
    while _beats(heartbeat) < 3:
        assert time.monotonic() < deadline, Submission.objects.get(pk=sid).status
        time.sleep(0.05)
    assert api("bob").post(f"/api/v1/submissions/{sid}/cancel/").status_code == 404
    response = api("charlie").post(f"/api/v1/submissions/{sid}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    # The worker notices within a poll interval and kills the child: the heartbeat stops,
    # long before the 60 s time limit would have stopped it.
    time.sleep(2)
    stopped_at = _beats(heartbeat)
    time.sleep(1)
    assert _beats(heartbeat) == stopped_at, "evaluate() kept running after the cancel"
    submission = Submission.objects.get(pk=sid)
    assert submission.status == Submission.Status.CANCELLED and not submission.results.exists()
    assert api("charlie").post(f"/api/v1/submissions/{sid}/cancel/").status_code == 400
    # The worker serves on: the same script's next submission is evaluated.
    assert run_hostile(api, patient, "fine").status == Submission.Status.FINISHED


def test_host_cancel_stops_a_running_evaluation_too(patient, api, heartbeat):
    sid = submit(api("charlie"), patient, "probe", f"beat:{heartbeat}", name="w.txt").json()["id"]
    deadline = time.monotonic() + 20
    while _beats(heartbeat) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api("alice").post(f"/api/v1/submissions/{sid}/cancel/").status_code == 200
    time.sleep(2)
    stopped_at = _beats(heartbeat)
    time.sleep(1)
    assert _beats(heartbeat) == stopped_at
    assert Submission.objects.get(pk=sid).status == Submission.Status.CANCELLED


REQUIREMENTS_EVALUATE = """
import evalserver_probe_pkg

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    value = evalserver_probe_pkg.VALUE
    return {"result": [{"main": {"Score": value, "Other": 0}}, {"hidden": {"Score": value, "Other": 0}}]}
"""


def test_a_script_with_requirements_runs_in_its_own_environment(pipeline, users, host_teams, api):
    """The wheelhouse (tests/conftest.py) holds evalserver-probe-pkg, which the worker's own
    environment lacks: only the script version's environment can import it."""
    bundle = script_bundle(
        REQUIREMENTS_EVALUATE,
        title="Needs a package",
        script_files={"requirements.txt": "evalserver-probe-pkg==1.0\n"},
    )
    challenge = load_approved(bundle, users, host_teams["alice"])
    participate(users["charlie"], challenge)
    response = submit(api("charlie"), challenge, "probe", "1", name="s.txt")
    assert response.status_code == 201, response.content
    (submission,) = wait_final([response.json()["id"]], timeout=120)
    assert submission.status == Submission.Status.FINISHED, (
        submission.failure_message,
        submission.traceback,
    )
    result = submission.results.get(phase_split__dataset_split__codename="main")
    assert result.scores["Score"] == 7.0
    script = challenge.scripts.get()
    script.refresh_from_db()
    assert script.env_status == "ready", script.env_log
