"""Resumable uploads (tus 1.0.0 + finish): offsets kept on the server, checks before the
first byte, sha256 at the end, parts streamed and swept."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
from pathlib import Path

import pytest
from django.utils import timezone

from challenges.models import ResumableUpload, Submission
from challenges.services import resumable
from challenges.services.resumable import resumable_upload_append, resumable_uploads_sweep
from tests.workers.pipeline_helpers import load_approved, participate

pytestmark = pytest.mark.django_db

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


@pytest.fixture
def challenge(users, host_teams, starter_zips):
    challenge = load_approved(starter_zips["tabular_classification"], users, host_teams["alice"])
    participate(users["charlie"], challenge)
    return challenge


def metadata(**values) -> str:
    return ",".join(f"{k} {base64.b64encode(str(v).encode()).decode()}" for k, v in values.items())


def create(client, content: bytes, *, length: int | None = None, **meta):
    meta.setdefault("sha256", hashlib.sha256(content).hexdigest())
    return client.post(
        "/api/v1/uploads/",
        HTTP_UPLOAD_LENGTH=str(len(content) if length is None else length),
        HTTP_UPLOAD_METADATA=metadata(**meta),
        **TUS,
    )


def patch(client, url: str, offset: int, body: bytes, **headers):
    return client.generic(
        "PATCH",
        url,
        data=body,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
        **TUS,
        **headers,
    )


def checksum(body: bytes, algorithm: str = "sha256") -> dict[str, str]:
    digest = base64.b64encode(hashlib.new(algorithm, body).digest()).decode()
    return {"HTTP_UPLOAD_CHECKSUM": f"{algorithm} {digest}"}


def csv_rows(n: int) -> bytes:
    return ("id,label\n" + "".join(f"{i},{i % 2}\n" for i in range(n))).encode()


def submission_meta(challenge, name="predictions.csv", **extra):
    return {
        "kind": "submission",
        "challenge": challenge.pk,
        "phase": "dev",
        "filename": name,
        **extra,
    }


def test_an_upload_dropped_at_half_resumes_from_the_servers_offset_and_submits(
    api, challenge, settings, monkeypatch
):
    monkeypatch.setattr(resumable, "PART_BYTES", 4096)  # several parts per PATCH
    content = csv_rows(3000)
    client = api("charlie")
    created = create(client, content, **submission_meta(challenge, method_name="gbm"))
    assert created.status_code == 201, created.content
    assert created["Tus-Resumable"] == "1.0.0"
    url = created["Location"]
    half = len(content) // 2
    assert patch(client, url, 0, content[:half]).status_code == 204
    # The client "reloads": all it has is the id; the server says where to go on.
    head = client.head(url, **TUS)
    assert head.status_code == 200
    assert int(head["Upload-Offset"]) == half
    assert int(head["Upload-Length"]) == len(content)
    done = patch(client, url, half, content[half:])
    assert done.status_code == 204
    assert int(done["Upload-Offset"]) == len(content)
    upload = ResumableUpload.objects.get()
    assert len(upload.part_names) > 2
    finished = client.post(url + "finish/", **TUS)
    assert finished.status_code == 201, finished.content
    submission = Submission.objects.get(pk=finished.json()["submission"])
    assert submission.input_sha256 == hashlib.sha256(content).hexdigest()
    assert submission.input_size == len(content)
    assert submission.method_name == "gbm"
    assert submission.input_file.read() == content
    stored = settings.MEDIA_ROOT / "uploads" / "resumable" / upload.pk
    assert not stored.exists() or not any(stored.iterdir())
    # A retried finish answers the same submission, and makes no second one.
    again = client.post(url + "finish/", **TUS)
    assert again.json()["submission"] == submission.pk
    assert Submission.objects.count() == 1


def test_a_patch_at_the_wrong_offset_is_refused_with_the_servers_offset(api, challenge):
    content = csv_rows(100)
    client = api("charlie")
    url = create(client, content, **submission_meta(challenge))["Location"]
    assert patch(client, url, 0, content[:50]).status_code == 204
    wrong = patch(client, url, 0, content[:50])
    assert wrong.status_code == 409
    assert "50 bytes" in wrong.json()["detail"]
    past = patch(client, url, 50, content[50:] + b"extra")
    assert past.status_code == 413
    assert "Upload-Length" in past.json()["detail"]


def test_a_body_that_ends_early_keeps_what_arrived(api, challenge, users):
    content = csv_rows(200)
    url = create(api("charlie"), content, **submission_meta(challenge))["Location"]
    upload = ResumableUpload.objects.get()
    # The connection drops after 700 of the announced bytes.
    offset = resumable_upload_append(
        upload=upload, offset=0, body=io.BytesIO(content[:700]), body_length=len(content)
    )
    assert offset == 700
    head = api("charlie").head(url, **TUS)
    assert int(head["Upload-Offset"]) == 700


def test_a_file_over_the_phase_limit_is_refused_before_any_byte_is_stored(api, challenge, settings):
    challenge.phases.filter(codename="dev").update(max_submission_size_bytes=1000)
    response = create(api("charlie"), b"x" * 10, length=5000, **submission_meta(challenge))
    assert response.status_code == 413
    assert "at most 1000 bytes" in response.json()["detail"]
    assert not ResumableUpload.objects.exists()
    assert not (settings.MEDIA_ROOT / "uploads").exists()
    settings.RESUMABLE_UPLOAD_MAX_BYTES = 100
    response = create(api("charlie"), b"x" * 10, length=500, **submission_meta(challenge))
    assert response.status_code == 413
    assert "RESUMABLE_UPLOAD_MAX_BYTES" in response.json()["detail"]


def test_a_used_up_quota_is_refused_at_creation_with_retry_after(api, challenge):
    challenge.phases.filter(codename="dev").update(max_submissions_per_day=0)
    response = create(api("charlie"), csv_rows(10), **submission_meta(challenge))
    assert response.status_code == 429
    assert "daily limit" in response.json()["detail"]
    assert int(response["Retry-After"]) > 0
    assert not ResumableUpload.objects.exists()


def test_unfinished_uploads_count_against_the_team_storage_cap(api, challenge, settings):
    settings.SUBMISSION_TEAM_STORAGE_BYTES = 1500
    client = api("charlie")
    assert create(client, b"a" * 1000, **submission_meta(challenge)).status_code == 201
    second = create(client, b"b" * 1000, **submission_meta(challenge))
    assert second.status_code == 413
    assert "SUBMISSION_TEAM_STORAGE_BYTES" in second.json()["detail"]


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"sha256": "nothex"}, "sha256"),
        ({"filename": "predictions.exe"}, "not an accepted file type"),
        ({"phase": ""}, "`phase`"),
        ({"kind": "video"}, "Unknown upload kind"),
    ],
)
def test_bad_metadata_is_a_clear_400(api, challenge, meta, expected):
    response = create(api("charlie"), csv_rows(5), **{**submission_meta(challenge), **meta})
    assert response.status_code == 400
    assert expected in response.json()["detail"]


def test_a_missing_or_bad_upload_length_is_a_400(api, challenge):
    response = api("charlie").post(
        "/api/v1/uploads/", HTTP_UPLOAD_METADATA=metadata(**submission_meta(challenge)), **TUS
    )
    assert response.status_code == 400
    assert "Upload-Length" in response.json()["detail"]


def test_a_wrong_sha256_discards_the_upload(api, challenge):
    content = csv_rows(50)
    client = api("charlie")
    url = create(client, content, **submission_meta(challenge), sha256="0" * 64)["Location"]
    assert patch(client, url, 0, content).status_code == 204
    response = client.post(url + "finish/", **TUS)
    assert response.status_code == 460
    assert "not the declared" in response.json()["detail"]
    assert not ResumableUpload.objects.exists()
    assert not Submission.objects.exists()


def test_finishing_before_the_last_byte_is_a_409(api, challenge):
    content = csv_rows(50)
    client = api("charlie")
    url = create(client, content, **submission_meta(challenge))["Location"]
    patch(client, url, 0, content[:10])
    response = client.post(url + "finish/", **TUS)
    assert response.status_code == 409
    assert "10 of" in response.json()["detail"]


def test_another_users_upload_does_not_exist_for_them(api, challenge, users):
    url = create(api("charlie"), csv_rows(5), **submission_meta(challenge))["Location"]
    assert api("bob").head(url, **TUS).status_code == 404
    assert patch(api("bob"), url, 0, b"id").status_code == 404
    assert api("bob").delete(url, **TUS).status_code == 404
    assert api(None).head(url, **TUS).status_code == 401


def test_termination_removes_the_upload_and_its_parts(api, challenge, settings):
    content = csv_rows(50)
    client = api("charlie")
    url = create(client, content, **submission_meta(challenge))["Location"]
    patch(client, url, 0, content[:20])
    upload = ResumableUpload.objects.get()
    (part,) = upload.part_names
    assert (settings.MEDIA_ROOT / part).exists()
    assert client.delete(url, **TUS).status_code == 204
    assert not ResumableUpload.objects.exists()
    assert not (settings.MEDIA_ROOT / part).exists()


def test_options_advertises_the_protocol(api):
    response = api("charlie").options("/api/v1/uploads/")
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert "creation" in response["Tus-Extension"]
    assert "checksum" in response["Tus-Extension"].split(",")
    assert "sha1" in response["Tus-Checksum-Algorithm"].split(",")


def test_a_patch_whose_checksum_matches_is_kept_and_one_that_does_not_is_refused_whole(
    api, challenge, settings, monkeypatch
):
    """tus checksum: a PATCH corrupted on its way is refused on its own (460), with nothing
    of it kept, so the client sends those bytes again instead of the whole file."""
    monkeypatch.setattr(resumable, "PART_BYTES", 1024)  # several parts per PATCH
    content = csv_rows(1000)
    client = api("charlie")
    url = create(client, content, **submission_meta(challenge))["Location"]
    first, rest = content[:5000], content[5000:]
    kept = patch(client, url, 0, first, **checksum(first, "sha1"))
    assert kept.status_code == 204, kept.content
    assert kept["Upload-Offset"] == "5000"
    damaged = rest[:100] + b"X" + rest[101:]
    refused = patch(client, url, 5000, damaged, **checksum(rest))
    assert refused.status_code == 460
    assert "Upload-Checksum" in refused.json()["detail"]
    upload = ResumableUpload.objects.get()
    assert upload.offset == 5000
    folder = settings.MEDIA_ROOT / "uploads" / "resumable" / upload.pk
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        Path(name).name for name in upload.part_names
    )  # the refused body's parts are gone
    again = patch(client, url, 5000, rest, **checksum(rest))
    assert again.status_code == 204
    finished = client.post(url + "finish/", **TUS)
    assert finished.status_code == 201, finished.content
    assert Submission.objects.get().input_file.read() == content


def test_a_checked_patch_cut_short_keeps_nothing(api, challenge):
    content = csv_rows(200)
    create(api("charlie"), content, **submission_meta(challenge))
    upload = ResumableUpload.objects.get()
    offset = resumable_upload_append(
        upload=upload,
        offset=0,
        body=io.BytesIO(content[:700]),
        body_length=len(content),
        checksum=resumable.Checksum("sha256", hashlib.sha256(content).digest()),
    )
    assert offset == 0
    assert ResumableUpload.objects.get().part_names == []


@pytest.mark.parametrize(
    "header, expected",
    [
        ("md4 AAAA", "not an algorithm this server checks"),
        ("sha256 not-base64!", "must be 32 bytes in base64"),
        ("sha1 " + base64.b64encode(b"short").decode(), "must be 20 bytes"),
        ("sha256", "must be 32 bytes"),
    ],
)
def test_a_bad_upload_checksum_is_a_clear_400(api, challenge, header, expected):
    content = csv_rows(10)
    client = api("charlie")
    url = create(client, content, **submission_meta(challenge))["Location"]
    response = patch(client, url, 0, content, HTTP_UPLOAD_CHECKSUM=header)
    assert response.status_code == 400
    assert expected in response.json()["detail"]
    assert ResumableUpload.objects.get().offset == 0


def test_the_sweeper_removes_abandoned_uploads_only(api, challenge, settings):
    content = csv_rows(50)
    client = api("charlie")
    old = create(client, content, **submission_meta(challenge))["Location"]
    patch(client, old, 0, content[:20])
    fresh = create(client, content, **submission_meta(challenge))["Location"]
    patch(client, fresh, 0, content[:20])
    stale = ResumableUpload.objects.get(pk=old.rstrip("/").rsplit("/", 1)[-1])
    (stale_part,) = stale.part_names
    ResumableUpload.objects.filter(pk=stale.pk).update(
        updated_at=timezone.now() - dt.timedelta(seconds=settings.RESUMABLE_UPLOAD_TTL_S + 60)
    )
    report = resumable_uploads_sweep()
    assert (report.uploads, report.parts) == (1, 1)
    assert not (settings.MEDIA_ROOT / stale_part).exists()
    assert list(ResumableUpload.objects.values_list("pk", flat=True)) == [
        fresh.rstrip("/").rsplit("/", 1)[-1]
    ]


def test_a_host_uploads_a_bundle_resumably(api, users, host_teams, starter_zips):
    content = starter_zips["tabular_classification"].read_bytes()
    client = api("alice")
    created = create(
        client, content, kind="bundle", filename="bundle.zip", host_team=host_teams["alice"].pk
    )
    assert created.status_code == 201, created.content
    url = created["Location"]
    half = len(content) // 2
    patch(client, url, 0, content[:half])
    patch(client, url, half, content[half:])
    response = client.post(url + "finish/", **TUS)
    assert response.status_code == 201, response.content
    assert response.json()["created"] is True
    # Only the hosts may re-upload it.
    challenge_id = response.json()["challenge"]
    refused = create(api("bob"), content, kind="bundle", filename="b.zip", challenge=challenge_id)
    assert refused.status_code in (403, 404)


def test_a_host_adds_public_data_and_a_participant_resumes_its_download(api, challenge):
    content = bytes(range(256)) * 40
    client = api("alice")
    meta = {"kind": "public_data", "challenge": challenge.pk, "phase": "dev", "filename": "big.bin"}
    assert create(api("charlie"), content, **meta).status_code == 403
    url = create(client, content, **meta)["Location"]
    patch(client, url, 0, content)
    response = client.post(url + "finish/", **TUS)
    assert response.status_code == 201, response.content
    listing = api("charlie").get(f"/api/v1/challenges/{challenge.pk}/phases/dev/data/").json()
    (item,) = [i for i in listing if i["name"] == "big.bin"]
    assert item["sha256"] == hashlib.sha256(content).hexdigest()
    ranged = api("charlie").get(
        f"/api/v1/challenges/{challenge.pk}/phases/dev/data/big.bin",
        HTTP_RANGE="bytes=1000-",
        HTTP_IF_RANGE=f'"{item["sha256"]}"',
    )
    assert ranged.status_code == 206
    assert ranged["Content-Range"] == f"bytes 1000-{len(content) - 1}/{len(content)}"
    assert b"".join(ranged.streaming_content) == content[1000:]


def test_nul_characters_and_malformed_ids_are_4xx_not_500(api, challenge):
    client = api("charlie")
    response = create(client, csv_rows(5), **submission_meta(challenge, name="a\x00.csv"))
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    response = create(client, csv_rows(5), **{**submission_meta(challenge), "phase": "d\x00ev"})
    assert response.status_code == 400
    for upload_id in ("%00", "x" * 40, "../../etc"):
        assert client.head(f"/api/v1/uploads/{upload_id}/", **TUS).status_code == 404
