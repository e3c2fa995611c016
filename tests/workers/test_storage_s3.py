"""The ordinary pipeline with storage on S3: a real S3-speaking server process (moto's
standalone server on 127.0.0.1), a real Celery worker whose MEDIA_ROOT is its own empty
folder. Nothing reaches the worker through a shared disk: it fetches the script, the
annotation and the submission from the bucket into its cache, checked by sha256."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid

import pytest

from challenges.models import Submission
from tests.conftest import files_under
from tests.services import (
    S3Server,
    WorkerProcess,
    new_queue,
    publishing_to,
    storing_in,
    worker_env,
    worker_machine,
)
from tests.workers.pipeline_helpers import (
    GOOD_EVALUATE,
    load_approved,
    participate,
    script_bundle,
    submit,
    wait_final,
)

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(workdir=tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture
def machine(tmp_path, transactional_db, settings):
    """Folders of a worker machine: its own media root (kept empty), var and cache."""
    with worker_machine(tmp_path, name="worker") as folders:
        yield folders


def test_a_submission_scores_right_with_storage_on_s3_and_no_shared_media_root(
    s3, machine, settings, tmp_path, users, host_teams, api
):
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    settings.MEDIA_ROOT = tmp_path / "web-media"  # the web's: must stay empty too
    queue = new_queue()
    worker = WorkerProcess(
        env=worker_env(
            **machine,
            broker_url=settings.CELERY_BROKER_URL,
            queue=queue,
            EVALUATION_TIME_LIMIT_S="60",
            **s3.env(prefix),
        ),
        log_path=tmp_path / "worker.log",
        node=f"s3-{uuid.uuid4().hex[:6]}@%h",
        concurrency=1,
    )
    with storing_in(s3, settings, prefix), publishing_to(settings.CELERY_BROKER_URL, queue):
        challenge = load_approved(script_bundle(GOOD_EVALUATE), users, host_teams["alice"])
        participate(users["charlie"], challenge)
        worker.start()
        try:
            response = submit(api("charlie"), challenge, "probe", "40", name="guess.txt")
            assert response.status_code == 201, response.content
            (submission,) = wait_final([response.json()["id"]], timeout=90)
        finally:
            worker.stop()
    assert submission.status == Submission.Status.FINISHED, (
        submission.failure_message,
        submission.traceback,
        worker.log()[-3000:],
    )
    scores = {r.phase_split.dataset_split.codename: r.scores for r in submission.results.all()}
    assert scores == {
        "main": {"Score": pytest.approx(1 / 3), "Other": 40.0},
        "hidden": {"Score": pytest.approx(1 / 6), "Other": 0},
    }

    # Everything stored went to the bucket, under the prefix; no local disk holds any of it.
    keys = s3.keys(prefix + "/")
    assert submission.input_file.name in {k.removeprefix(prefix + "/") for k in keys}
    assert any("/annotations/" in k for k in keys) and any("/scripts/" in k for k in keys)
    assert files_under(settings.MEDIA_ROOT) == set()
    assert files_under(machine["media_root"]) == set()
    # The worker fetched the annotation, the submission and the script archive into its
    # cache, each named by the sha256 recorded when it was stored.
    phase = challenge.phases.get()
    cached = {p.name.split("-", 1)[0] for p in (machine["cache_dir"] / "blobs").iterdir()}
    script = challenge.scripts.get()
    assert {phase.test_annotation_sha256, submission.input_sha256, script.archive_sha256} <= (
        cached
    )

    # Objects are private: the owner alone is granted anything, and an anonymous GET fails.
    key = f"{prefix}/{submission.input_file.name}"
    grants = s3.client().get_object_acl(Bucket=s3.bucket, Key=key)["Grants"]
    assert [g["Grantee"].get("URI") for g in grants] == [None]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{s3.url}/{s3.bucket}/{key}", timeout=5)  # noqa: S310
    assert refused.value.code == 403

    # The team downloads its own file: a redirect to a short-lived presigned URL, which
    # the object store answers itself, Range included. Another team gets nothing.
    answer = api("charlie").get(f"/api/v1/submissions/{submission.pk}/file/")
    assert answer.status_code == 302, answer.content
    presigned = answer["Location"]
    assert presigned.startswith(f"{s3.url}/{s3.bucket}/{key}?") and "Signature" in presigned
    content = submission.input_file.open("rb").read()
    with urllib.request.urlopen(presigned, timeout=5) as fetched:  # noqa: S310 - loopback
        assert fetched.read() == content
    ranged = urllib.request.Request(presigned, headers={"Range": "bytes=1-"})  # noqa: S310
    with urllib.request.urlopen(ranged, timeout=5) as fetched:  # noqa: S310 - loopback
        assert fetched.status == 206 and fetched.read() == content[1:]
    assert api("bob").get(f"/api/v1/submissions/{submission.pk}/file/").status_code == 404
