"""Code submissions through the real pipeline: a participant uploads a pickled predict(),
a real Celery worker runs it in the sandbox on the phase's hidden features, checks the
predictions and scores them with the challenge's evaluate(). Hostile models fail with a
class the participant can act on, and the worker serves on.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from pathlib import Path

import pytest

from challenges.models import Submission
from tests.workers import models
from tests.workers.models import ROWS, TRUTH, code_bundle
from tests.workers.pipeline_helpers import (
    load_approved,
    participate,
    submit,
    wait_final,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def code_challenge(pipeline, users, host_teams):
    challenge = load_approved(code_bundle(), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    return challenge


def run_model(api, challenge, model: bytes, timeout: float = 60) -> Submission:
    response = submit(api("charlie"), challenge, "probe", model, name="model.pkl")
    assert response.status_code == 201, response.content
    (submission,) = wait_final([response.json()["id"]], timeout=timeout)
    return submission


def test_a_valid_model_finishes_with_the_expected_score_through_the_api(code_challenge, api):
    submission = run_model(api, code_challenge, models.model_bytes(models.GOOD))
    assert submission.status == Submission.Status.FINISHED, (
        submission.failure_kind,
        submission.failure_message,
        submission.traceback,
    )
    mine = api("charlie").get(f"/api/v1/submissions/{submission.pk}/").json()
    assert mine["status"] == "finished"
    assert [r["split"] for r in mine["results"]] == ["main"]
    assert mine["results"][0]["scores"]["Score"] == pytest.approx(0.95)
    assert mine["results"][0]["scores"]["Other"] == ROWS
    record = submission.execution["predict"]
    assert record["rows"] == ROWS and record["sandbox"]["network_isolated"]
    assert record["sandbox"]["uid"] == 65533 and record["sandbox"]["cpus"] == 1
    assert "scored 20 rows" in submission.stdout
    # Staging it for evaluate() (a hard link) left the stored file closed to other users.
    annotation = Path(code_challenge.phases.get().test_annotation.path)
    assert not annotation.stat().st_mode & 0o007, oct(annotation.stat().st_mode)


def test_a_model_goes_through_predicting_before_running(code_challenge, api):
    slow = models.model_bytes(
        """
        import time
        import pandas as pd

        def predict(features):
            time.sleep(1.5)
            return pd.DataFrame({"prediction": features["f"] / 10.0}, index=features.index)
        """
    )
    sid = submit(api("charlie"), code_challenge, "probe", slow, name="model.pkl").json()["id"]
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = Submission.objects.get(pk=sid).status
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in Submission.FINAL:
            break
        time.sleep(0.02)
    assert "predicting" in seen and seen[-1] == "finished", seen
    assert seen.index("predicting") < len(seen) - 1


def _listening_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    return server


def hostile(name: str, **context) -> bytes:
    sources = {
        "network": """
            import socket

            def predict(features):
                socket.create_connection(("127.0.0.1", port), timeout=3)
            """,
        "annotation": """
            def predict(features):
                return open(annotation).read()
            """,
        "environment": """
            import os

            def predict(features):
                raise RuntimeError("saw " + " ".join(sorted(os.environ)))
            """,
        "fork": """
            import os

            def predict(features):
                while True:
                    os.fork()
            """,
        "memory": models.MEMORY,
        "loop": models.LOOP,
        "write": """
            import os

            def predict(features):
                wrote, refused = [], []
                for target in targets + [os.path.join(os.getcwd(), "..", "escaped")]:
                    try:
                        with open(target, "w") as fh:
                            fh.write("pwned")
                        wrote.append(target)
                    except OSError as exc:
                        refused.append(type(exc).__name__)
                raise PermissionError(f"wrote {wrote}; refused {refused}")
            """,
    }
    if name == "missing_module":
        return models.model_needing_a_missing_module()
    return models.model_bytes(sources[name], **context)


@pytest.mark.parametrize(
    ("name", "kind", "fragment"),
    [
        ("memory", "memory", "memory limit of 1024 MB"),
        ("loop", "timeout", "time limit of 4 s"),
        ("fork", "processes", "processes allowed"),
        ("missing_module", "environment", "'lightgbm_not_installed_here'"),
        ("environment", "exception", " HOME "),
    ],
)
def test_hostile_models_fail_with_their_class_and_the_worker_serves_on(
    code_challenge, api, name, kind, fragment
):
    submission = run_model(api, code_challenge, hostile(name))
    assert submission.status == Submission.Status.FAILED
    assert submission.failure_kind == kind, (submission.failure_message, submission.traceback)
    assert fragment in submission.failure_message
    assert not submission.results.exists()
    for secret in ("DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL"):
        assert secret not in submission.failure_message + submission.traceback + submission.stdout
    after = run_model(api, code_challenge, models.model_bytes(models.GOOD))
    assert after.status == Submission.Status.FINISHED, after.failure_message


def test_a_model_cannot_reach_a_server_on_loopback(code_challenge, api):
    server = _listening_server()
    try:
        submission = run_model(
            api, code_challenge, hostile("network", port=server.getsockname()[1])
        )
        assert submission.status == Submission.Status.FAILED
        assert submission.failure_kind == "network", submission.failure_message
        with pytest.raises(TimeoutError):
            server.accept()  # nobody ever connected
    finally:
        server.close()


def test_a_model_cannot_read_the_annotation_file_by_its_real_path(code_challenge, api):
    phase = code_challenge.phases.get()
    annotation = Path(phase.test_annotation.path)
    assert annotation.read_text() == TRUTH  # it is there, at that path
    submission = run_model(api, code_challenge, hostile("annotation", annotation=str(annotation)))
    assert submission.status == Submission.Status.FAILED
    assert submission.failure_kind == "exception"
    # Refused by the file modes; or, where the storage lies under /tmp (a checkout there),
    # not even visible in the model's mount namespace.
    assert re.search(r"PermissionError|FileNotFoundError", submission.failure_message)
    assert "0.05" not in submission.failure_message + submission.traceback


def test_a_model_cannot_write_outside_its_folder(code_challenge, api, pipeline_env):
    mark = uuid.uuid4().hex[:8]
    targets = [
        f"/tmp/evalserver-escaped-{mark}",  # noqa: S108 - the point of the test
        f"/var/tmp/evalserver-escaped-{mark}",
        f"/dev/shm/evalserver-escaped-{mark}",
        str(pipeline_env["media_root"] / f"escaped-{mark}"),
        str(pipeline_env["cache_dir"] / f"escaped-{mark}"),
    ]
    submission = run_model(api, code_challenge, hostile("write", targets=targets))
    assert submission.status == Submission.Status.FAILED
    assert submission.failure_kind == "exception"
    assert "wrote []" in submission.failure_message, submission.failure_message
    assert not [t for t in targets if Path(t).exists()]
