"""`evalserver-cli` resumes: a submit killed at half goes on from the server's offset in a
new process and the submission scores; `data` continues a truncated file with Range."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading

import pytest
from rest_framework.authtoken.models import Token

from challenges.api import uploads as uploads_api
from challenges.models import ResumableUpload, Submission
from evalserver import cli
from starters.build import sample_submissions
from tests.workers.pipeline_helpers import load_approved, participate

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def cli_process(live_server, token: str, cache, *argv) -> subprocess.Popen:
    env = {**os.environ, "EVALSERVER_CACHE_DIR": str(cache)}
    for name in ("EVALSERVER_URL", "EVALSERVER_TOKEN", "EVALSERVER_CONFIG"):
        env.pop(name, None)
    env["EVALSERVER_CONFIG"] = str(cache / "none.json")
    return subprocess.Popen(
        [sys.executable, "-m", "evalserver.cli", "--url", live_server.url, "--token", token, *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def entered(pipeline, users, host_teams, starter_zips, starter_dir):
    """The tabular starter approved, charlie's team in it: (challenge, token, sample file)."""
    challenge = load_approved(starter_zips["tabular_classification"], users, host_teams["alice"])
    participate(users["charlie"], challenge)
    token = Token.objects.create(user=users["charlie"]).key
    return challenge, token, sample_submissions(starter_dir)["tabular_classification"]["dev"]


def test_a_submit_killed_at_half_resumes_in_a_new_process_and_scores(
    entered, live_server, tmp_path, monkeypatch
):
    challenge, token, sample = entered
    size = sample.stat().st_size
    part_mib = (size // 8 + 1) / 1024 / 1024  # eight PATCHes

    # The live server runs in this process: hold the request that passes half of the file
    # until the test has killed the CLI that sent it.
    reached, release = threading.Event(), threading.Event()
    offsets: list[int] = []
    original = uploads_api.resumable_upload_append

    def append(*, upload, offset, body, body_length, checksum):
        assert checksum is not None and checksum.algorithm == "sha256"  # the CLI sends one
        offsets.append(offset)
        new = original(
            upload=upload, offset=offset, body=body, body_length=body_length, checksum=checksum
        )
        if new >= size // 2 and not reached.is_set():
            reached.set()
            release.wait(30)
        return new

    monkeypatch.setattr(uploads_api, "resumable_upload_append", append)
    cache = tmp_path / "cache"
    args = ("submit", str(challenge.pk), "dev", str(sample), "--part-mib", f"{part_mib:.9f}")
    first = cli_process(live_server, token, cache, *args)
    try:
        assert reached.wait(60), first.communicate(timeout=5)
        first.kill()  # SIGKILL: no chance to clean up
        first.wait(10)
    finally:
        release.set()
    upload = ResumableUpload.objects.get()
    stopped_at = upload.offset
    assert size // 2 <= stopped_at < size
    assert not Submission.objects.exists()
    assert list((cache / "uploads").glob("*.json")), "the CLI keeps its upload's state"

    calls_before = len(offsets)
    second = cli_process(live_server, token, cache, *args, "--wait", "--timeout", "60")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, (out, err)
    assert f"resuming upload at byte {stopped_at} of {size}" in err
    assert offsets[calls_before] == stopped_at  # it sent only the rest
    submission = Submission.objects.get(pk=int(re.search(r"submission (\d+):", out).group(1)))
    assert submission.input_sha256 == hashlib.sha256(sample.read_bytes()).hexdigest()
    assert submission.status == Submission.Status.FINISHED, submission.failure_message
    assert "dev_split" in out
    assert not list((cache / "uploads").glob("*.json")), "the state goes once it is done"


class _Damaging:
    """A request body with one byte changed on its way, as a bad link might."""

    def __init__(self, body, at: int):
        self.body, self.at, self.seen = body, at, 0

    def read(self, n=-1):
        data = self.body.read(n)
        if self.seen <= self.at < self.seen + len(data):
            i = self.at - self.seen
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        self.seen += len(data)
        return data


def test_a_patch_damaged_on_its_way_is_refused_and_sent_again(
    entered, live_server, tmp_path, monkeypatch
):
    """Each PATCH carries its sha256 (tus checksum): the server refuses the damaged one
    (460) and the CLI sends those bytes again, instead of the file failing at the end."""
    challenge, token, sample = entered
    size = sample.stat().st_size
    part_mib = (size // 4 + 1) / 1024 / 1024  # four PATCHes
    offsets: list[int] = []
    answers: list[str] = []
    original = uploads_api.resumable_upload_append

    def append(*, upload, offset, body, body_length, checksum):
        offsets.append(offset)
        if len(offsets) == 3:  # the third PATCH arrives damaged
            body = _Damaging(body, at=body_length // 2)
        try:
            new = original(
                upload=upload, offset=offset, body=body, body_length=body_length, checksum=checksum
            )
        except uploads_api.UploadRefused as exc:
            answers.append(str(exc.status_code))
            raise
        answers.append("204")
        return new

    monkeypatch.setattr(uploads_api, "resumable_upload_append", append)
    args = ("submit", str(challenge.pk), "dev", str(sample), "--part-mib", f"{part_mib:.9f}")
    proc = cli_process(live_server, token, tmp_path / "cache", *args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    assert answers == ["204", "204", "460", "204", "204"]
    assert offsets[2] == offsets[3]  # the same bytes again
    submission = Submission.objects.get()
    assert submission.input_sha256 == hashlib.sha256(sample.read_bytes()).hexdigest()


def test_data_resumes_a_truncated_file_and_checks_its_sha256(
    pipeline, live_server, users, host_teams, starter_zips, tmp_path, monkeypatch, capsys
):
    challenge = load_approved(starter_zips["tabular_classification"], users, host_teams["alice"])
    participate(users["charlie"], challenge)
    token = Token.objects.create(user=users["charlie"]).key
    monkeypatch.setenv("EVALSERVER_CONFIG", str(tmp_path / "none.json"))
    base = ["--url", live_server.url, "--token", token, "data", str(challenge.pk), "dev"]
    out_dir = tmp_path / "data"
    assert cli.main([*base, "--out", str(out_dir)]) == 0
    train = out_dir / "train.csv"
    whole = train.read_bytes()
    capsys.readouterr()

    with train.open("r+b") as fh:  # the download "broke" at 40 %
        fh.truncate(len(whole) * 2 // 5)
    assert cli.main([*base, "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert (
        f"train.csv ({len(whole)} bytes, sha256 ok, resumed at byte {len(whole) * 2 // 5})" in out
    )
    assert train.read_bytes() == whole

    # A partial file that is not a prefix of the server's: the check catches it.
    train.write_bytes(b"x" * (len(whole) // 2))
    assert cli.main([*base, "--out", str(out_dir)]) == 1
    assert "sha256 does not match" in capsys.readouterr().err
    assert not train.exists()
    assert cli.main([*base, "--out", str(out_dir)]) == 0
    assert train.read_bytes() == whole
