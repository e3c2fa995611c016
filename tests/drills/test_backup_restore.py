"""Drill: back up as docs/deployment.md says, lose the installation, restore into a new
database and a new storage, and serve the same.

The commands are read from the documentation's `<!-- drill: NAME -->` blocks and run as
they are written, for both storage backends (MEDIA_ROOT on disk, and an S3-compatible
bucket: moto's server, synced bucket to bucket with the AWS command-line client). The
live database and files are destroyed before the restore, so the restored installation
can only serve what the backup held.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
import uuid

import pytest

from tests.conftest import require_service
from tests.drills.conftest import MIGRATED
from tests.drills.installation import drill_bundle, drill_env, machine_folders, site_prepare
from tests.drills.processes import Gunicorn, api_json, http, run_shell, start_together
from tests.services import ROOT, S3Server, WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.services]

DOC = ROOT / "docs" / "deployment.md"


def documented(step: str) -> str:
    """The shell block under `<!-- drill: STEP -->` in docs/deployment.md."""
    blocks = dict(re.findall(r"<!-- drill: ([\w-]+) -->\n```sh\n(.*?)```", DOC.read_text(), re.S))
    assert step in blocks, f"docs/deployment.md has no `<!-- drill: {step} -->` block"
    return blocks[step]


def test_the_documentation_has_every_step_the_drill_runs():
    for step in ("backup-database", "restore-database"):
        assert "pg_" in documented(step)
    for backend in ("filesystem", "s3"):
        assert documented(f"backup-files-{backend}") and documented(f"restore-files-{backend}")


@pytest.mark.parametrize("backend", ["filesystem", "s3"])
def test_a_backup_restored_into_a_new_database_and_storage_serves_the_same(
    backend, shared_cluster, redis_server, tmp_path
):
    if backend == "s3":
        require_service("the AWS command-line client (aws)", shutil.which("aws") is not None)
    cluster = shared_cluster
    backup = tmp_path / "backup"
    backup.mkdir()
    with contextlib.ExitStack() as stack:
        _live_root, live_folders = stack.enter_context(machine_folders("live"))
        _new_root, new_folders = stack.enter_context(machine_folders("restored"))
        s3_live, s3_new, backup_env = {}, {}, {"BACKUP": str(backup)}
        if backend == "s3":
            s3 = S3Server(workdir=tmp_path / "s3", bucket="live").start()
            stack.callback(s3.stop)
            for bucket in ("copies", "restored"):
                s3.client().create_bucket(Bucket=bucket)
            s3_live = s3.env(prefix="site")
            s3_new = {**s3.env(prefix="site"), "S3_BUCKET": "restored"}
            backup_env |= {"BACKUP_BUCKET": "copies", "BACKUP_PREFIX": "evalserver"}

        # The installation in use: a challenge, a participant's submissions, scored.
        live = drill_env(
            database_url=cluster.createdb(f"live_{backend}", template=MIGRATED),
            broker_url=redis_server.url,
            folders=live_folders,
            # The sandbox is not what this drill is about (the pipeline tests check it).
            EVALUATION_SANDBOX_CHECK="false",
            **s3_live,
        )
        web = Gunicorn(live, tmp_path / "gunicorn-live.log")
        worker = WorkerProcess(
            env=live, log_path=tmp_path / "worker.log", node=f"drill-{uuid.uuid4().hex[:6]}@%h"
        )
        stack.callback(web.stop)
        stack.callback(worker.stop)
        start_together(web, worker)
        site = site_prepare(live, web.url, drill_bundle(), tmp_path)
        ids = [_submit(web.url, site, value) for value in (3, 1, 2)]
        _wait_finished(web.url, site, ids, worker)
        before = _observe(web.url, site, ids)
        web.stop()
        worker.stop()

        started = time.monotonic()
        for step in ("backup-database", f"backup-files-{backend}"):
            run_shell(documented(step), env={**live, **backup_env}, cwd=tmp_path)
        # The installation is lost: its database and its files.
        cluster.dropdb(f"live_{backend}")
        if backend == "s3":
            _empty_bucket(s3, "live")
        else:
            shutil.rmtree(live_folders["media_root"])

        new = drill_env(
            database_url=cluster.createdb(f"restored_{backend}"),
            broker_url=redis_server.url,
            folders=new_folders,
            **s3_new,
        )
        for step in ("restore-database", f"restore-files-{backend}"):
            run_shell(documented(step), env={**new, **backup_env}, cwd=tmp_path)
        took = time.monotonic() - started
        restored = Gunicorn(new, tmp_path / "gunicorn-restored.log").start()
        stack.callback(restored.stop)
        after = _observe(restored.url, site, ids)
        if backend == "s3":
            # Served from the new bucket: the live one is empty, nothing is on disk.
            restored_keys = [
                item["Key"]
                for item in s3.client().list_objects_v2(Bucket="restored").get("Contents", [])
            ]
            assert sum(k.startswith("site/submissions/") for k in restored_keys) == len(ids)
            assert not any(new_folders["media_root"].iterdir())

    files = sum(key.endswith("/file/") for key in before)
    print(
        f"\ndrill figures ({backend}): {len(before)} answers compared, {len(ids)} submissions, "
        f"{files} downloads, backup and restore took {took:.1f} s"
    )
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], key
    # What was compared is real: scored rows on the leaderboards, files of their bytes.
    board = before[
        f"anonymous /api/v1/challenges/{site.challenge_id}/phases/probe/splits/main/leaderboard/"
    ]
    # One team, its best submission (3 of 3, 1, 2) on top: labels Score, Attempt.
    assert [row["scores"] for row in json.loads(board[1])["rows"]] == [[3.0, 1]]
    downloads = [before[f"participant /api/v1/submissions/{sid}/file/"][1] for sid in ids]
    assert downloads == [b"3", b"1", b"2"]


def _submit(url: str, site, value: int) -> int:
    return api_json(
        "POST",
        f"{url}/api/v1/challenges/{site.challenge_id}/phases/probe/submissions/",
        token=site.tokens["participant"],
        files={"file": ("value.txt", str(value).encode())},
    )["id"]


def _wait_finished(url: str, site, ids: list[int], worker, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = [
            api_json("GET", f"{url}/api/v1/submissions/{sid}/", token=site.tokens["participant"])[
                "status"
            ]
            for sid in ids
        ]
        if states == ["finished"] * len(ids):
            return
        assert time.monotonic() < deadline, (states, worker.log_tail())
        time.sleep(0.3)


def _observe(url: str, site, ids: list[int]) -> dict[str, tuple[int, bytes]]:
    """What each reader is served: anonymous visitors the public leaderboard, the host the
    hidden split, the participant (with the token issued before the backup) their
    submissions, logs and files. Keyed "who path"; values (status, body)."""
    cid = site.challenge_id
    reads = [
        ("anonymous", f"/api/v1/challenges/{cid}/"),
        ("anonymous", f"/api/v1/challenges/{cid}/phases/probe/splits/main/leaderboard/"),
        ("host", f"/api/v1/challenges/{cid}/phases/probe/splits/hidden/leaderboard/"),
        ("host", f"/api/v1/challenges/{cid}/phases/probe/splits/main/leaderboard.csv"),
        ("participant", f"/api/v1/challenges/{cid}/phases/probe/submissions/"),
        ("participant", "/api/v1/teams/"),
        ("participant", "/api/v1/auth/tokens/"),
        ("host", "/api/v1/auth/tokens/"),
    ]
    for sid in ids:
        reads += [
            ("participant", f"/api/v1/submissions/{sid}/"),
            ("host", f"/api/v1/submissions/{sid}/stdout/"),
            ("participant", f"/api/v1/submissions/{sid}/file/"),
        ]
    seen = {}
    for who, path in reads:
        status, _headers, body = http("GET", url + path, token=site.tokens.get(who))
        assert status == 200, (who, path, status, body[:500])
        seen[f"{who} {path}"] = (status, body)
    return seen


def _empty_bucket(s3: S3Server, bucket: str) -> None:
    client = s3.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
