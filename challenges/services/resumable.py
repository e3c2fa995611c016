"""Resumable uploads (tus 1.0.0) of submissions, bundles and public data, on our storage.

Why tus and not S3 multipart with presigned part URLs: one protocol for the filesystem and
S3 backends, a published spec with existing clients (tus-js-client, tuspy), and nothing
in the browser that needs the bucket's address or CORS. Why our own small server instead
of a library: the Python tus servers on PyPI are unmaintained or written for other
frameworks, and the core (create, HEAD offset, PATCH append, DELETE) is a page.

How it stays bounded and resumable:
- The client declares the size, name and sha256 when it creates the upload; every check
  that needs no content (who, when, file type, size limit, team storage, quotas) is made
  then, before the first byte is stored, and again by the usual service at the end.
- A PATCH body is streamed into storage in parts of at most PART_BYTES; each part is
  committed (conditional update on the offset it started from) as soon as it is stored, so
  a dropped connection loses at most the part in flight. The offset is on the server,
  keyed by the upload id: a reloaded page or a restarted CLI asks for it with HEAD.
- Finishing streams the parts through sha256 into one temporary file, compares the digest
  with the declared one, and hands the file to the ordinary service (submission_create,
  challenge_load_bundle, or the phase's public data).
- A PATCH may carry Upload-Checksum (tus checksum extension, sha1 or sha256): its parts
  are then committed only once the whole body matches, so a corrupted PATCH is refused
  (460) on its own instead of spoiling the file's sha256 at the end.
- Uploads untouched for RESUMABLE_UPLOAD_TTL_S are swept with their parts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import require_challenge_host
from challenges.models import (
    Challenge,
    ChallengePhase,
    HostTeam,
    ResumableUpload,
    Submission,
)
from challenges.services.hosting import submitter_participation
from challenges.services.parts import part_store, parts_joined
from challenges.services.storage import delete_quietly, safe_basename
from challenges.services.submissions import (
    FileTooLarge,
    SubmissionFields,
    SubmissionRefused,
    submission_check_before_upload,
    submission_create,
)
from challenges.submission_access import Submitter, access_submitter

log = logging.getLogger(__name__)

PART_BYTES = 16 * 1024 * 1024
Kind = ResumableUpload.Kind
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}\Z")


class UploadRefused(SubmissionRefused):
    """An upload request refused; `status_code` is the HTTP answer (tus uses 409 for a
    wrong offset, 413 for too large, 460 for a checksum mismatch)."""

    def __init__(self, message: str, *, status_code: int = 400, field: str | None = None):
        super().__init__(message, field=field)
        self.status_code = status_code


@dataclass(frozen=True)
class Target:
    """What an upload is for, resolved and access-checked by the caller."""

    kind: str
    phase: ChallengePhase | None = None
    submitter: Submitter | None = None  # a submission's, from access_submitter
    challenge: Challenge | None = None
    host_team: HostTeam | None = None


def _pending_bytes(*, challenge_id: int, team_id: int) -> int:
    """Bytes other unfinished uploads of the team have declared: they count against its
    storage cap from the moment they are created, or many parallel uploads could pass it."""
    return (
        ResumableUpload.objects.filter(
            kind=Kind.SUBMISSION,
            challenge_id=challenge_id,
            team_id=team_id,
            finished_at__isnull=True,
        ).aggregate(total=Sum("length"))["total"]
        or 0
    )


def resumable_upload_create(
    *,
    user,
    target: Target,
    file_name: str,
    length: int,
    sha256: str,
    fields: dict[str, Any] | None = None,
) -> ResumableUpload:
    """Check everything that needs no content, then record the upload (no byte stored yet)."""
    sha256 = (sha256 or "").strip().lower()
    if not _SHA256.match(sha256):
        raise UploadRefused(
            "Upload-Metadata needs `sha256`: the file's SHA-256 as 64 hex digits; it is "
            "checked when the upload finishes.",
            field="sha256",
        )
    hard_limit = settings.RESUMABLE_UPLOAD_MAX_BYTES
    if length > hard_limit:
        raise FileTooLarge(
            _(
                "Upload-Length %(length)s passes the server's limit of %(hard_limit)s bytes per upload (RESUMABLE_UPLOAD_MAX_BYTES)."
            )
            % {"length": length, "hard_limit": hard_limit},
            field="Upload-Length",
        )
    name = safe_basename(file_name or "", default="upload")
    row = ResumableUpload(
        id=secrets.token_hex(16),
        user=user,
        kind=target.kind,
        file_name=(file_name or name)[:255],
        length=length,
        sha256=sha256,
        fields=dict(fields or {}),
        updated_at=timezone.now(),
    )
    if target.kind == Kind.SUBMISSION:
        submitter = target.submitter
        assert submitter is not None
        phase, participation = submitter.phase, submitter_participation(submitter)
        submission_check_before_upload(
            submitter=submitter,
            file_name=file_name,
            size=length,
            pending_bytes=_pending_bytes(
                challenge_id=phase.challenge_id, team_id=participation.team_id
            )
            if participation
            else 0,
        )
        row.challenge_id, row.phase = phase.challenge_id, phase
        row.team_id = participation.team_id if participation else None
    elif target.kind == Kind.BUNDLE:
        limit = settings.BUNDLE_MAX_UPLOAD_BYTES
        if length > limit:
            raise FileTooLarge(
                _(
                    "The bundle is %(length)s bytes; the server accepts bundles of at most %(limit)s bytes (BUNDLE_MAX_UPLOAD_BYTES)."
                )
                % {"length": length, "limit": limit},
                field="Upload-Length",
            )
        if not name.lower().endswith(".zip"):
            raise UploadRefused(f"{name!r}: a challenge bundle is a .zip file.", field="filename")
        row.challenge = target.challenge
        row.fields["host_team"] = target.host_team.pk if target.host_team else None
    elif target.kind == Kind.PUBLIC_DATA:
        phase = target.phase
        assert phase is not None
        require_challenge_host(user, phase.challenge, _("add public data"))
        row.challenge_id, row.phase = phase.challenge_id, phase
    else:
        raise UploadRefused(
            f"Unknown upload kind {target.kind!r}; use submission, bundle or public_data.",
            field="kind",
        )
    if length <= 0:
        raise UploadRefused("Upload-Length must be a positive number of bytes.")
    row.save(force_insert=True)
    return row


def access_upload(user, upload_id: str) -> ResumableUpload:
    """An upload of `user`'s; another user's upload does not exist for them (404)."""
    if not _UPLOAD_ID.match(str(upload_id)):  # never a query with a NUL or a wrong shape
        raise ResumableUpload.DoesNotExist
    return ResumableUpload.objects.get(pk=upload_id, user=user)


@dataclass(frozen=True)
class Checksum:
    """tus checksum extension: a PATCH body's digest, declared in Upload-Checksum."""

    algorithm: str  # one of CHECKSUM_ALGORITHMS
    digest: bytes


CHECKSUM_ALGORITHMS = ("sha1", "sha256")


def resumable_upload_append(
    *,
    upload: ResumableUpload,
    offset: int,
    body: IO[bytes],
    body_length: int | None,
    checksum: Checksum | None = None,
) -> int:
    """Append a PATCH body at `offset`; returns the new offset.

    Without a checksum each stored part is committed at once, so what arrived before a
    drop stays. With one, the parts are committed together once the whole body is in and
    matches it (460 otherwise, and nothing of the body is kept): a body cut short cannot
    be checked, so it is not kept either."""
    if upload.finished_at is not None:
        raise UploadRefused("This upload is finished already.", status_code=409)
    if offset != upload.offset:
        raise UploadRefused(
            f"Upload-Offset is {offset} but the server has {upload.offset} bytes of this "
            "upload; ask with HEAD and continue from there.",
            status_code=409,
            field="Upload-Offset",
        )
    if body_length is None:
        raise UploadRefused("A PATCH needs a Content-Length.", status_code=411)
    if offset + body_length > upload.length:
        raise UploadRefused(
            f"This PATCH would end at byte {offset + body_length}, past the declared "
            f"Upload-Length of {upload.length}.",
            status_code=413,
            field="Content-Length",
        )
    digest = hashlib.new(checksum.algorithm) if checksum else None
    pending: list[str] = []  # stored, not yet committed: waiting for the checksum
    pending_size = 0
    remaining = body_length
    try:
        while remaining > 0:
            want = min(PART_BYTES, remaining)
            # A fresh random name per part: a concurrent PATCH at the same offset never
            # writes over the part this one is storing.
            name = (
                f"uploads/resumable/{upload.pk}/part-"
                f"{len(upload.part_names) + len(pending) + 1:05d}-{secrets.token_hex(4)}"
            )
            saved, size = part_store(name, body, want, digest)
            if size == 0:
                delete_quietly([saved])
                break
            if digest is None:
                _commit(upload, [saved], size)
            else:
                pending.append(saved)
                pending_size += size
            remaining -= size
            if size < want:
                break  # the body ended early: keep what arrived, the client resumes
        if digest is not None:
            if remaining > 0:
                delete_quietly(pending)  # cut short: nothing to check it against
            elif digest.digest() != checksum.digest:
                raise UploadRefused(
                    f"The PATCH body's {checksum.algorithm} does not match its "
                    "Upload-Checksum; it was not kept. Send the same bytes again from "
                    f"offset {upload.offset}.",
                    status_code=460,
                    field="Upload-Checksum",
                )
            else:
                _commit(upload, pending, pending_size)
            pending = []
    finally:
        delete_quietly(pending)
    return upload.offset


def _commit(upload: ResumableUpload, names: list[str], size: int) -> None:
    """Make stored parts the upload's next bytes, if no other PATCH did meanwhile."""
    parts = [*upload.part_names, *names]
    # The offset is the row's version: only one PATCH starting here may append.
    changed = ResumableUpload.objects.filter(
        pk=upload.pk, offset=upload.offset, finished_at__isnull=True
    ).update(offset=upload.offset + size, part_names=parts, updated_at=timezone.now())
    if changed != 1:
        delete_quietly(names)
        raise UploadRefused(
            "Another request appended to this upload meanwhile; ask with HEAD for the "
            "offset and continue from there.",
            status_code=409,
        )
    upload.offset += size
    upload.part_names = parts


def resumable_upload_delete(*, upload: ResumableUpload) -> None:
    """Termination: the parts and the row go."""
    delete_quietly(upload.part_names)
    upload.delete()


def submission_from_upload(
    *, submitter: Submitter, upload_id: str, fields: SubmissionFields
) -> Submission:
    """Finish the submitter's upload for their phase with the submission's fields given now
    (the submit page sends its form after the file went up)."""
    user, phase = submitter.user, submitter.phase
    upload = None
    if _UPLOAD_ID.match(str(upload_id)):
        upload = ResumableUpload.objects.filter(
            pk=upload_id, user=user, kind=Kind.SUBMISSION, phase=phase
        ).first()
    if upload is None:
        raise UploadRefused(
            "That upload is unknown or expired; choose the file again.", field="file"
        )
    result = resumable_upload_finish(
        upload=upload, user=user, fields=fields.as_dict(), submitter=submitter
    )
    return Submission.objects.get(pk=result["submission"])


def resumable_upload_finish(
    *,
    upload: ResumableUpload,
    user,
    fields: dict[str, Any] | None = None,
    submitter: Submitter | None = None,
) -> dict[str, Any]:
    """Join the parts (streamed, hashed), verify the sha256 and hand the file to the
    ordinary service (`fields` replace those given at creation). A retried finish answers
    what the first one made. `submitter`: a submission's, when the caller resolved it for
    the upload's phase already (the submit page)."""
    if upload.kind == Kind.PUBLIC_DATA and upload.phase_id:
        # The host may have lost the role since creating the upload.
        require_challenge_host(user, upload.phase.challenge, _("add public data"))
    if upload.finished_at is not None:
        return upload.result
    if not upload.complete:
        raise UploadRefused(
            f"The server has {upload.offset} of {upload.length} bytes; send the rest "
            "(PATCH from Upload-Offset) before finishing.",
            status_code=409,
        )
    mismatch = ""
    with transaction.atomic():
        try:
            # One finish at a time: a second request (a client retrying) waits for none.
            locked = (
                ResumableUpload.objects.select_for_update(nowait=True)
                .filter(pk=upload.pk, finished_at__isnull=True)
                .first()
            )
        except DatabaseError:
            raise UploadRefused(
                "This upload is being finished by another request; ask again in a moment.",
                status_code=409,
            ) from None
        if locked is None:  # finished meanwhile
            return ResumableUpload.objects.get(pk=upload.pk).result
        parts = list(locked.part_names)
        with parts_joined(parts) as joined:
            if joined.size != locked.length or joined.sha256 != locked.sha256:
                mismatch = joined.sha256
                locked.delete()
            else:
                if fields is not None:
                    locked.fields = {**locked.fields, **fields}
                result = _deliver(locked, user=user, joined=joined.file, submitter=submitter)
                locked.finished_at = timezone.now()
                locked.updated_at = locked.finished_at
                locked.result = result
                locked.part_names = []
                locked.save(update_fields=["finished_at", "updated_at", "result", "part_names"])
    # Committed: the parts are no longer needed (finished) or no longer wanted (corrupt).
    delete_quietly(parts)
    if mismatch:
        raise UploadRefused(
            f"The uploaded bytes have sha256 {mismatch}, not the declared {upload.sha256}; "
            "the upload is discarded, upload the file again.",
            status_code=460,
            field="sha256",
        )
    return result


def _deliver(
    upload: ResumableUpload, *, user, joined, submitter: Submitter | None
) -> dict[str, Any]:
    f = upload.fields
    if upload.kind == Kind.SUBMISSION:
        if submitter is None:  # tus's finish: the upload names the phase, nothing else did
            phase = ChallengePhase.objects.select_related("challenge").get(pk=upload.phase_id)
            submitter = access_submitter(user, phase)
        submission = submission_create(
            submitter=submitter,
            upload=UploadedFile(joined, name=upload.file_name, size=upload.length),
            fields=SubmissionFields.from_mapping(f),
            sha256=upload.sha256,  # checked against the joined bytes just now
        )
        return {"submission": submission.pk, "status": submission.status}
    if upload.kind == Kind.BUNDLE:
        from challenges.services.bundles import challenge_load_bundle

        host_team = HostTeam.objects.get(pk=f["host_team"])
        challenge = Challenge.objects.get(pk=upload.challenge_id) if upload.challenge_id else None
        result = challenge_load_bundle(
            source=joined.name, user=user, host_team=host_team, challenge=challenge
        )
        return {
            "challenge": result.challenge.pk,
            "created": result.created,
            "script_version": result.script.version,
            "warnings": [p.as_dict() for p in result.warnings],
        }
    phase = ChallengePhase.objects.select_for_update().get(pk=upload.phase_id)
    return public_data_put(phase=phase, name=upload.file_name, stream=joined)


def public_data_put(*, phase: ChallengePhase, name: str, stream: IO[bytes]) -> dict[str, Any]:
    """Add a file to the phase's public data, or replace the one of the same name."""
    from challenges.services.storage import store_stream

    clean = safe_basename(name, default="data")
    path, sha, size = store_stream(
        folder=f"challenges/{phase.challenge_id}/phases/{phase.pk}/public",
        name=clean,
        stream=stream,
    )
    old = [i for i in phase.public_data if i["name"] == clean]
    item = {"name": clean, "bundle_path": "", "path": path, "sha256": sha, "size": size}
    phase.public_data = [i for i in phase.public_data if i["name"] != clean] + [item]
    phase.save(update_fields=["public_data"])
    transaction.on_commit(lambda: delete_quietly(i["path"] for i in old if i["path"] != path))
    return {"public_data": clean, "size": size, "sha256": sha}


@dataclass
class SweepReport:
    uploads: int = 0
    parts: int = 0


def resumable_uploads_sweep(*, now: dt.datetime | None = None) -> SweepReport:
    """Remove uploads nobody touched for RESUMABLE_UPLOAD_TTL_S, with their parts (finished
    ones keep no parts; their rows go too). Safe to run anywhere, any number of times."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.RESUMABLE_UPLOAD_TTL_S)
    report = SweepReport()
    for pk, parts in ResumableUpload.objects.filter(updated_at__lt=cutoff).values_list(
        "pk", "part_names"
    ):
        # Claimed by deleting the row only if still stale: an upload resumed meanwhile stays.
        deleted, _counts = ResumableUpload.objects.filter(pk=pk, updated_at__lt=cutoff).delete()
        if deleted:
            delete_quietly(parts)
            report.uploads += 1
            report.parts += len(parts)
    if report.uploads:
        log.info("swept %s abandoned upload(s), %s part(s)", report.uploads, report.parts)
    return report
