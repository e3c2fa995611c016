"""EvalAI's large-file submission (`evalai ... submit --large`) on our storage.

EvalAI hands the client presigned S3 multipart URLs, one per 20 MiB part, then completes
the upload. Here the "presigned" URLs point at this server: each part is streamed into
storage as it arrives (never held in memory), and finishing joins the parts and makes the
submission through `submission_create`, with every check and quota of any other upload.
It is an adapter over the engine tus uploads use (`services.parts`, which stores and joins
the parts): its parts are named by number, and the upload's state travels in its signed
`upload_id`, so nothing is written to the database until the submission itself.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile

from challenges.access import NOT_TAKING_PART, require_participation
from challenges.models import ChallengePhase, Submission
from challenges.services.hosting import submitter_participation
from challenges.services.parts import part_store, parts_joined
from challenges.services.storage import delete_quietly, safe_basename
from challenges.services.submissions import (
    SubmissionFields,
    SubmissionRefused,
    max_upload_bytes,
    submission_create,
    submission_reserve_id,
)
from challenges.submission_access import Submitter

PART_BYTES = 20 * 1024 * 1024  # the CLI's part size
_SALT = "evalserver.evalai.large-upload"


@dataclass(frozen=True)
class LargeUpload:
    upload_id: str  # signed; names everything below
    nonce: str
    user_id: int
    phase_id: int
    submission_pk: int
    file_name: str
    parts: int
    fields: dict[str, Any]

    def part_path(self, number: int) -> str:
        return f"uploads/evalai/{self.nonce}/part-{number:05d}"


def large_upload_start(
    *, submitter: Submitter, file_name: str, parts: int, fields: SubmissionFields
) -> LargeUpload:
    """Reserve the submission's id and sign the upload. Who may submit is checked again,
    with everything else, when the upload finishes."""
    if submitter_participation(submitter) is None:
        raise SubmissionRefused(
            "Your team does not take part in this challenge: join a team and accept the terms first."
        )
    phase = submitter.phase
    most = math.ceil(max_upload_bytes(phase) / PART_BYTES) + 1
    if not 1 <= parts <= most:
        raise SubmissionRefused(
            f"num_file_chunks must be between 1 and {most} for this phase, not {parts}.",
            field="num_file_chunks",
        )
    state = {
        "n": secrets.token_hex(12),
        "u": submitter.user.pk,
        "p": phase.pk,
        "s": submission_reserve_id(),
        "f": safe_basename(file_name, default="submission"),
        "c": parts,
        "x": fields.as_dict(),
    }
    return _upload(signing.dumps(state, salt=_SALT, compress=True))


def _upload(upload_id: str) -> LargeUpload:
    try:
        s = signing.loads(upload_id, salt=_SALT, max_age=settings.EVALAI_FILE_URL_MAX_AGE_S)
    except signing.BadSignature:
        raise SubmissionRefused(
            "This upload is unknown or has expired; start the submission again.",
            field="upload_id",
        ) from None
    return LargeUpload(upload_id, s["n"], s["u"], s["p"], s["s"], s["f"], s["c"], s["x"])


def large_upload_part_store(*, upload_id: str, number: int, stream: IO[bytes]) -> str:
    """Stream one part into storage; returns its ETag. A part sent again replaces itself."""
    upload = _upload(upload_id)
    if not 1 <= number <= upload.parts:
        raise SubmissionRefused(f"This upload has parts 1 to {upload.parts}, not {number}.")
    path = upload.part_path(number)
    default_storage.delete(path)
    saved, _ = part_store(path, stream, PART_BYTES)
    if stream.read(1):  # more than a part: refused, as S3 refuses an oversized part
        delete_quietly([saved])
        raise SubmissionRefused(f"A part is at most {PART_BYTES} bytes.")
    if saved != path:  # a concurrent retry of the same part got there first
        default_storage.delete(saved)
    return f'"{upload.nonce}-{number}"'


def large_upload_finish(*, submitter: Submitter, upload_id: str, submission_pk: int) -> Submission:
    """Join the parts in order and submit them as one file, under the reserved id.
    `submitter`: resolved for the phase the finishing request names."""
    user = submitter.user
    upload = _upload(upload_id)
    if upload.user_id != user.pk or upload.submission_pk != int(submission_pk):
        raise SubmissionRefused("This upload belongs to another submission.", field="upload_id")
    done = Submission.objects.filter(pk=upload.submission_pk, created_by=user).first()
    if done is not None:  # finished already: the client retried
        return done
    missing = [
        n for n in range(1, upload.parts + 1) if not default_storage.exists(upload.part_path(n))
    ]
    if missing:
        raise SubmissionRefused(
            f"Part(s) {', '.join(map(str, missing))} of {upload.parts} never arrived; upload again.",
            field="parts",
        )
    phase = ChallengePhase.objects.select_related("challenge").get(pk=upload.phase_id)
    participation = submitter_participation(submitter)
    if participation is not None and participation.challenge_id != phase.challenge_id:
        # The finish call names a phase of its own; the upload's phase is the one signed.
        raise SubmissionRefused("This upload belongs to another phase.", field="upload_id")
    names = [upload.part_path(n) for n in range(1, upload.parts + 1)]
    try:
        require_participation(participation, NOT_TAKING_PART)
        with parts_joined(names) as joined:
            return submission_create(
                submitter=submitter.for_phase(phase),
                upload=UploadedFile(joined.file, name=upload.file_name, size=joined.size),
                fields=SubmissionFields.from_mapping(upload.fields),
                pk=upload.submission_pk,
                sha256=joined.sha256,  # hashed while joining
            )
    finally:
        # Submitted or refused (quota, storage, file type): the parts are not kept.
        delete_quietly(names)
