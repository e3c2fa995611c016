"""Remote evaluation through EvalAI's API against a live server (gunicorn, a real worker,
PostgreSQL, Redis): the loop of EvalAI-Starters' remote_challenge_evaluation/main.py, in
the same shape (poll, fetch, download, evaluate, update, delete), with a host's token."""

from __future__ import annotations

import json
import os
import time

import pytest
import requests
import yaml
from rest_framework.authtoken.models import Token

from challenges.models import ChallengePhaseSplit, Submission
from challenges.services.remote_evaluation import queue_name
from tests.challenges import bundle_factory as bf
from tests.workers.pipeline_helpers import SCRIPT_CONFIG, load_approved, participate

pytestmark = [pytest.mark.services, pytest.mark.e2e]


def remote_bundle() -> bytes:
    config = yaml.safe_load(yaml.safe_dump(SCRIPT_CONFIG))
    config["title"] = "Scored at home"
    config["remote_evaluation"] = True
    return bf.zip_bytes(
        {
            "challenge_config.yaml": yaml.safe_dump(config, sort_keys=False),
            "templates/description.html": "<p>remote</p>",
            "annotations/truth.json": '{"answer": 42}',
            # EvalAI bundles carry a script even for remote challenges; it is not run here.
            "evaluation_script.zip": bf.zip_bytes(
                {"__init__.py": "def evaluate(*a, **k):\n    raise SystemExit(1)\n"}
            ),
        }
    )


class EvalAIInterface:
    """EvalAI-Starters' eval_ai_interface.EvalAI_Interface: same URLs, verbs and bodies."""

    URLS = {
        "get_message_from_sqs_queue": "/api/jobs/challenge/queues/{}/",
        "get_submission_by_pk": "/api/jobs/submission/{}",
        "get_challenge_phase_by_pk": "/api/challenges/challenge/phase/{}",
        "delete_message_from_sqs_queue": "/api/jobs/queues/{}/",
        "update_submission": "/api/jobs/challenge/{}/update_submission/",
    }

    def __init__(self, auth_token, api_server, queue, challenge_pk):
        self.auth_token, self.api_server = auth_token, api_server
        self.queue, self.challenge_pk = queue, challenge_pk

    def request(self, url, method, data=None, raise_for_status=True):
        response = requests.request(
            method=method,
            url=self.api_server + url,
            headers={"Authorization": f"Bearer {self.auth_token}"},
            data=data,
            timeout=30,
        )
        if raise_for_status:
            response.raise_for_status()
        return response

    def get_message_from_sqs_queue(self):
        return self.request(
            self.URLS["get_message_from_sqs_queue"].format(self.queue), "GET"
        ).json()

    def delete_message_from_sqs_queue(self, receipt_handle):
        url = self.URLS["delete_message_from_sqs_queue"].format(self.queue)
        return self.request(url, "POST", {"receipt_handle": receipt_handle}).json()

    def update_submission_data(self, data):
        url = self.URLS["update_submission"].format(self.challenge_pk)
        return self.request(url, "PUT", data).json()

    def update_submission_status(self, data):
        url = self.URLS["update_submission"].format(self.challenge_pk)
        return self.request(url, "PATCH", data).json()

    def get_submission_by_pk(self, pk):
        return self.request(self.URLS["get_submission_by_pk"].format(pk), "GET").json()

    def get_challenge_phase_by_pk(self, pk):
        return self.request(self.URLS["get_challenge_phase_by_pk"].format(pk), "GET").json()


def evaluate(user_submission_file, phase_codename):
    """The host's own scoring, on the host's own machine, returning what EvalAI-Starters'
    remote evaluate.py returns: a list of {split, show_to_participant, accuracies}. A
    guess of 0 leaves out a label and keeps the public split from the participant."""
    with open(user_submission_file) as f:
        guess = float(f.read().strip())
    score = 1.0 / (1.0 + abs(42 - guess))
    main = {"Score": score, "Other": guess}
    if guess == 0:
        main = {"Score": score}
    return {
        "result": [
            {"split": "main", "show_to_participant": guess != 0, "accuracies": main},
            {
                "split": "hidden",
                "show_to_participant": False,
                "accuracies": {"Score": 1, "Other": 0},
            },
        ]
    }


def update_running(evalai, submission_pk):
    evalai.update_submission_status({"submission": submission_pk, "submission_status": "RUNNING"})


def update_failed(evalai, phase_pk, submission_pk, submission_error, stdout="", metadata=""):
    evalai.update_submission_data(
        {
            "challenge_phase": phase_pk,
            "submission": submission_pk,
            "stdout": stdout,
            "stderr": submission_error,
            "submission_status": "FAILED",
            "metadata": metadata,
        }
    )


def update_finished(
    evalai, phase_pk, submission_pk, result, submission_error="", stdout="", metadata=""
):
    evalai.update_submission_data(
        {
            "challenge_phase": phase_pk,
            "submission": submission_pk,
            "stdout": stdout,
            "stderr": submission_error,
            "submission_status": "FINISHED",
            "result": result,
            "metadata": metadata,
        }
    )


def download(submission, save_dir):
    """A plain GET of the input file's URL (no token), named after its last segment."""
    response = requests.get(submission["input_file"], timeout=30)
    path = os.path.join(save_dir, submission["input_file"].split("/")[-1])
    with open(path, "wb") as f:
        f.write(response.content)
    return path


def run_once(evalai: EvalAIInterface, save_dir) -> int | None:
    """One turn of main.py's `while True` loop (without its sleep), step for step."""
    message = evalai.get_message_from_sqs_queue()
    body = message.get("body")
    if not body:
        return None
    submission_pk, phase_pk = body.get("submission_pk"), body.get("phase_pk")
    submission = evalai.get_submission_by_pk(submission_pk)
    challenge_phase = evalai.get_challenge_phase_by_pk(phase_pk)
    if submission.get("status") in ("finished", "failed", "cancelled"):
        evalai.delete_message_from_sqs_queue(message.get("receipt_handle"))
        return submission_pk
    if submission.get("status") == "submitted":
        update_running(evalai, submission_pk)
    path = download(submission, save_dir)
    try:
        results = evaluate(path, challenge_phase["codename"])
        update_finished(evalai, phase_pk, submission_pk, json.dumps(results["result"]))
    except Exception as e:  # as main.py does: the failure goes to the server
        update_failed(evalai, phase_pk, submission_pk, str(e))
    # main.py leaves the message to expire; deleting it is the queue's own API.
    evalai.delete_message_from_sqs_queue(message.get("receipt_handle"))
    return submission_pk


def submit(server, token, challenge, phase, content: str) -> dict:
    response = requests.post(
        f"{server}/api/jobs/challenge/{challenge.pk}/challenge_phase/{phase.pk}/submission/",
        headers={"Authorization": f"Bearer {token}"},
        files={"input_file": ("guess.txt", content.encode())},
        data={"method_name": "at home"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_hosts_remote_worker_evaluates_through_evalais_queue_api(
    pipeline, web_server, users, host_teams, tmp_path
):
    challenge = load_approved(remote_bundle(), users, host_teams["alice"])
    assert challenge.remote_evaluation
    phase = challenge.phases.get()
    public = ChallengePhaseSplit.objects.get(phase=phase, dataset_split__codename="main")
    participate(users["charlie"], challenge, "Charlie Remote")
    host = Token.objects.get_or_create(user=users["alice"])[0].key
    participant = Token.objects.get_or_create(user=users["charlie"])[0].key
    queue = queue_name(challenge)

    # The host reads the queue name where EvalAI shows it: on the challenge.
    shown = requests.get(
        f"{web_server.url}/api/challenges/challenge/{challenge.pk}/",
        headers={"Authorization": f"Bearer {host}"},
        timeout=30,
    ).json()
    assert shown["queue"] == queue and shown["remote_evaluation"] is True
    as_participant = requests.get(
        f"{web_server.url}/api/challenges/challenge/{challenge.pk}/",
        headers={"Authorization": f"Bearer {participant}"},
        timeout=30,
    ).json()
    assert "queue" not in as_participant

    created = submit(web_server.url, participant, challenge, phase, "41")
    assert created["status"] == "submitted"
    # Our worker (running) never takes it: it waits for the hosts' machine.
    time.sleep(1)
    waiting = Submission.objects.get(pk=created["id"])
    assert (waiting.status, waiting.worker) == (Submission.Status.QUEUED, "")

    evalai = EvalAIInterface(host, web_server.url, queue, challenge.pk)
    handled = run_once(evalai, tmp_path)
    assert handled == created["id"]
    assert run_once(evalai, tmp_path) is None  # nothing else waits

    submission = Submission.objects.get(pk=created["id"])
    assert submission.status == Submission.Status.FINISHED
    assert submission.worker.startswith("remote:")
    assert submission.results.get(phase_split=public).scores == {"Score": 0.5, "Other": 41.0}
    seen = requests.get(
        f"{web_server.url}/api/v1/submissions/{created['id']}/",
        headers={"Authorization": f"Token {participant}"},
        timeout=30,
    ).json()
    assert [r["split"] for r in seen["results"]] == ["main"]

    board = requests.get(
        f"{web_server.url}/api/jobs/challenge_phase_split/{public.pk}/leaderboard/",
        headers={"Authorization": f"Bearer {participant}"},
        timeout=30,
    ).json()
    [row] = board["results"]
    assert row["submission__participant_team__team_name"] == "Charlie Remote"
    assert row["result"] == [0.5, 41.0]

    # A result that names a split the phase lacks is refused, as our workers refuse it,
    # and the submission stays running for a corrected one.
    participate(users["bob"], challenge, "Bob Remote")
    bob = Token.objects.get_or_create(user=users["bob"])[0].key
    second = submit(web_server.url, bob, challenge, phase, "0")
    message = evalai.get_message_from_sqs_queue()
    assert message["body"]["submission_pk"] == second["id"]
    update_running(evalai, second["id"])
    bad = evalai.request(
        evalai.URLS["update_submission"].format(challenge.pk),
        "PUT",
        {
            "challenge_phase": phase.pk,
            "submission": second["id"],
            "stdout": "",
            "stderr": "",
            "submission_status": "FINISHED",
            "result": json.dumps([{"split": "nope", "accuracies": {"Score": 1.0}}]),
            "metadata": "",
        },
        raise_for_status=False,
    )
    assert bad.status_code == 400
    assert "names split 'nope'" in bad.json()["error"]
    assert Submission.objects.get(pk=second["id"]).status == Submission.Status.RUNNING

    # A result lacking a label, with its public split kept from the participant, is
    # stored and finished (EvalAI stores it too): the cell is empty, the entry unranked.
    evaluated = evaluate(download(evalai.get_submission_by_pk(second["id"]), tmp_path), "probe")
    update_finished(evalai, phase.pk, second["id"], json.dumps(evaluated["result"]))
    lacking = Submission.objects.get(pk=second["id"])
    assert lacking.status == Submission.Status.FINISHED
    assert lacking.results.get(phase_split=public).scores == {"Score": 1 / 43}
    seen = requests.get(
        f"{web_server.url}/api/v1/submissions/{second['id']}/",
        headers={"Authorization": f"Token {bob}"},
        timeout=30,
    ).json()
    assert seen["results"] == [] and seen["submission_result"] == []
    hosts_view = requests.get(
        f"{web_server.url}/api/v1/submissions/{second['id']}/",
        headers={"Authorization": f"Token {host}"},
        timeout=30,
    ).json()
    assert sorted(r["split"] for r in hosts_view["results"]) == ["hidden", "main"]
    by_other = requests.get(
        f"{web_server.url}/api/v1/challenges/{challenge.pk}/phases/{phase.codename}"
        "/splits/main/leaderboard/?order_by=Other",
        headers={"Authorization": f"Token {host}"},
        timeout=30,
    ).json()
    assert [(r["rank"], r["team"], r["display"][1]) for r in by_other["rows"]] == [
        (1, "Charlie Remote", "41.00"),
        (None, "Bob Remote", ""),
    ]


def test_only_the_challenges_hosts_may_use_its_queue(pipeline, web_server, users, host_teams):
    challenge = load_approved(remote_bundle(), users, host_teams["alice"])
    phase = challenge.phases.get()
    participate(users["charlie"], challenge, "Charlie Remote")
    participant = Token.objects.get_or_create(user=users["charlie"])[0].key
    created = submit(web_server.url, participant, challenge, phase, "41")
    queue = queue_name(challenge)
    for name in ("charlie", "bob"):
        token = Token.objects.get_or_create(user=users[name])[0].key
        evalai = EvalAIInterface(token, web_server.url, queue, challenge.pk)
        answers = [
            evalai.request(
                evalai.URLS["get_message_from_sqs_queue"].format(queue),
                "GET",
                raise_for_status=False,
            ),
            evalai.request(
                evalai.URLS["delete_message_from_sqs_queue"].format(queue),
                "POST",
                {"receipt_handle": "anything"},
                raise_for_status=False,
            ),
            evalai.request(
                evalai.URLS["update_submission"].format(challenge.pk),
                "PATCH",
                {"submission": created["id"], "submission_status": "RUNNING"},
                raise_for_status=False,
            ),
            evalai.request(
                evalai.URLS["update_submission"].format(challenge.pk),
                "PUT",
                {
                    "challenge_phase": phase.pk,
                    "submission": created["id"],
                    "submission_status": "FINISHED",
                    "result": json.dumps([{"main": {"Score": 1, "Other": 1}}]),
                },
                raise_for_status=False,
            ),
        ]
        assert [a.status_code for a in answers] == [403] * 4, [a.text for a in answers]
        assert all("Only hosts of this challenge" in a.json()["error"] for a in answers)
    # Nothing was taken off the queue or recorded.
    submission = Submission.objects.get(pk=created["id"])
    assert submission.status == Submission.Status.QUEUED and submission.worker == ""
