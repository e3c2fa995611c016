"""Intake: a submission's file and fields are checked, stored, and accepted under the
team's quotas, then queued for evaluation once the transaction commits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.access import (
    NOT_TAKING_PART,
    require_challenge_host,
    require_invited,
    require_participation,
)
from challenges.leaderboard_rules import initial_is_public
from challenges.models import ChallengeParticipation, ChallengePhase, Submission
from challenges.prepared import Prepared, insert
from challenges.services.hosting import submitter_participation
from challenges.services.leaderboard_refresh import leaderboard_refresh
from challenges.services.storage import safe_basename, sha256_stream
from challenges.services.submissions.errors import (
    FileTooLarge,
    SubmissionRefused,
    check_approved,
    reader_time,
)
from challenges.services.submissions.quotas import (
    _check_quotas,
    quota_state,
    quotas_and_storage_check,
    team_storage_check,
)
from challenges.services.submissions.transitions import submission_enqueue
from challenges.submission_access import Submitter
from challenges.text_checks import bidi_problem

# ---------------------------------------------------------------- input checks


def submission_is_late(phase: ChallengePhase, now: dt.datetime) -> bool:
    """A submission made now would be late: the phase (or the challenge) has ended and the
    host accepts late submissions (`allow_late_submissions`). The one rule of lateness,
    asked by every entry point through `_check_phase_open` and `submission_create`."""
    if not phase.allow_late_submissions:
        return False
    ended = phase.end_date is not None and now >= phase.end_date
    return ended or now >= phase.challenge.end_date


def _check_phase_open(phase: ChallengePhase, now: dt.datetime) -> None:
    challenge = phase.challenge
    check_approved(challenge, opens="submissions")
    if phase.start_date and now < phase.start_date:
        raise SubmissionRefused(
            _("Phase %(codename)s opens at %(start_date)s.")
            % {
                "codename": repr(phase.codename),
                "start_date": reader_time(phase.start_date),
            }
        )
    if submission_is_late(phase, now):
        if phase.is_submission_paused:
            raise SubmissionRefused(
                _("The hosts have paused submissions to phase %(phase)r; try again later.")
                % {"phase": phase.codename}
            )
        return
    if phase.end_date and now >= phase.end_date:
        raise SubmissionRefused(
            _("Phase %(codename)s closed at %(end_date)s.")
            % {
                "codename": repr(phase.codename),
                "end_date": reader_time(phase.end_date),
            }
        )
    if now >= challenge.end_date:
        raise SubmissionRefused(_("The challenge has ended."))
    if phase.is_submission_paused:
        raise SubmissionRefused(
            _("The hosts have paused submissions to phase %(codename)s; try again later.")
            % {"codename": repr(phase.codename)}
        )


def max_upload_bytes(phase: ChallengePhase) -> int:
    return phase.max_submission_size_bytes or settings.SUBMISSION_MAX_BYTES


def _check_file_type(phase: ChallengePhase, name: str) -> None:
    allowed = [t.lower() for t in phase.allowed_submission_file_types or []]
    if allowed and not any(name.lower().endswith(ext) for ext in allowed):
        raise SubmissionRefused(
            _("%(value)s is not an accepted file type; this phase accepts %(names)s.")
            % {"value": repr(safe_basename(name)), "names": ", ".join(allowed)},
            field="file",
        )


def _check_file(phase: ChallengePhase, upload: UploadedFile) -> None:
    name = upload.name or ""
    lowered = name.lower()
    _check_file_type(phase, name)
    limit = max_upload_bytes(phase)
    if upload.size is not None and upload.size > limit:
        raise SubmissionRefused(
            _("The file is %(size)s bytes; this phase accepts at most %(limit)s.")
            % {"size": upload.size, "limit": limit},
            field="file",
        )
    if upload.size == 0:
        raise SubmissionRefused(_("The file is empty."), field="file")
    problem = _sniff(lowered, upload)
    if problem:
        raise SubmissionRefused(
            _("%(value)s: %(problem)s") % {"value": repr(safe_basename(name)), "problem": problem},
            field="file",
        )


def _sniff(name: str, upload: UploadedFile) -> str | None:
    """Check the content matches the extension, reading only the start of the file."""
    upload.seek(0)
    head = upload.read(8192)
    upload.seek(0)
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(upload) as zf:
                zf.infolist()
        except zipfile.BadZipFile:
            return "the file is named .zip but is not a zip archive."
        finally:
            upload.seek(0)
    elif name.endswith((".csv", ".tsv", ".txt", ".json")):
        if b"\x00" in head:
            return "the file should be text but contains binary data."
        if (
            name.endswith(".json")
            and head.lstrip()[:1] not in (b"{", b"[", b'"')
            and not head.lstrip()[:1].isdigit()
        ):
            return "the file is named .json but does not start like JSON."
    elif name.endswith(".gz") and not head.startswith(b"\x1f\x8b"):
        return "the file is named .gz but is not gzip-compressed."
    return None


def validate_meta_attributes(
    phase: ChallengePhase, values: dict[str, Any] | None
) -> dict[str, Any]:
    """Check submitted meta attributes against the phase's `submission_meta_attributes`."""
    values = dict(values or {})
    definitions = {
        d.get("name"): d for d in phase.submission_meta_attributes or [] if isinstance(d, dict)
    }
    errors = []
    clean: dict[str, Any] = {}
    for name in values:
        if name not in definitions:
            errors.append(
                _("%(name)s is not a meta attribute of this phase") % {"name": repr(name)}
            )
    for name, definition in definitions.items():
        kind, options = (
            definition.get("type", "text"),
            [str(o) for o in definition.get("options") or []],
        )
        required = str(definition.get("required", False)).lower() == "true"
        if name not in values or values[name] in (None, "", []):
            if required:
                errors.append(_("%(name)s is required") % {"name": repr(name)})
            continue
        value = values[name]
        if kind == "text":
            if not isinstance(value, str) or len(value) > 10000:
                errors.append(
                    _("%(name)s must be text of at most 10,000 characters") % {"name": repr(name)}
                )
                continue
        elif kind == "radio":
            if str(value) not in options:
                errors.append(
                    _("%(name)s must be one of %(names)s")
                    % {"name": repr(name), "names": ", ".join(options)}
                )
                continue
            value = str(value)
        elif kind == "checkbox":
            chosen = value if isinstance(value, list) else [value]
            bad = [str(v) for v in chosen if str(v) not in options]
            if bad:
                errors.append(
                    _("%(name)s: %(bad)s not among %(options)s")
                    % {"name": repr(name), "bad": ", ".join(bad), "options": ", ".join(options)}
                )
                continue
            value = [str(v) for v in chosen]
        elif kind == "boolean":
            if isinstance(value, str) and value.lower() in {"true", "false"}:
                value = value.lower() == "true"
            if not isinstance(value, bool):
                errors.append(_("%(name)s must be true or false") % {"name": repr(name)})
                continue
        clean[name] = value
    if errors:
        raise SubmissionRefused(
            _("Meta attributes: %(problems)s.") % {"problems": "; ".join(errors)},
            field="meta_attributes",
        )
    return clean


# ---------------------------------------------------------------- creation


@dataclass(frozen=True)
class SubmissionFields:
    """What a team says about a submission besides its file, whatever the entry point (the
    submit page, the v1 API, EvalAI's routes, an upload that keeps them until it ends)."""

    method_name: str = ""
    method_description: str = ""
    project_url: str = ""
    publication_url: str = ""
    meta_attributes: dict[str, Any] = field(default_factory=dict)
    is_public: bool | None = None  # None: the phase's default
    is_baseline: bool = False

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SubmissionFields:
        """From a form's cleaned data, an input serializer's validated data or the fields
        an upload kept: an absent or empty value is the default. (Meta attributes are
        checked against the phase by `submission_create`.)"""
        return cls(
            method_name=str(data.get("method_name") or "")[:1000],
            method_description=str(data.get("method_description") or ""),
            project_url=str(data.get("project_url") or ""),
            publication_url=str(data.get("publication_url") or ""),
            meta_attributes=data.get("meta_attributes") or {},
            is_public=data.get("is_public"),
            is_baseline=bool(data.get("is_baseline")),
        )

    def as_dict(self) -> dict[str, Any]:
        """For an upload to keep until it ends (JSON)."""
        return dataclasses.asdict(self)


def _check_may_submit(
    user,
    phase: ChallengePhase,
    participation: ChallengeParticipation | None,
    *,
    is_host: bool,
    now,
    tournament: str,
) -> None:
    """Who may submit to `phase` now: a team taking part, not in a tournament phase (whose
    refusal ends with `tournament`, where to go instead), the phase open and the user
    invited; hosts at any time once the challenge is approved."""
    require_participation(participation, NOT_TAKING_PART)
    if hasattr(phase, "tournament"):
        raise SubmissionRefused(
            _("Phase %(codename)s is a tournament: %(tournament)s")
            % {"codename": repr(phase.codename), "tournament": tournament}
        )
    if not is_host:
        _check_phase_open(phase, now)
        require_invited(user, phase)
    else:
        check_approved(phase.challenge, opens="submissions")


def submission_check_before_upload(
    *,
    submitter: Submitter,
    file_name: str,
    size: int,
    pending_bytes: int = 0,
) -> None:
    """What `submission_create` checks that needs no content, for an upload that declares
    its name and size before its first byte (resumable uploads): who, when, which file type,
    how large, the team's storage (with `pending_bytes` of its other unfinished uploads) and
    its quotas. `submission_create` checks everything again when the file is complete."""
    phase, participation, is_host = submitter.phase, submitter.participation, submitter.is_host
    _check_may_submit(
        submitter.user,
        phase,
        participation,
        is_host=is_host,
        now=timezone.now(),
        tournament="upload models and round predictions through its tournament endpoints.",
    )
    _check_file_type(phase, file_name)
    limit = max_upload_bytes(phase)
    if size > limit:
        raise FileTooLarge(
            _(
                "The file is %(size)s bytes; phase %(codename)s accepts at most %(limit)s bytes per submission (max_submission_size_bytes, else SUBMISSION_MAX_BYTES)."
            )
            % {"size": size, "codename": repr(phase.codename), "limit": limit},
            field="file",
        )
    if size <= 0:
        raise SubmissionRefused(_("The file is empty."), field="file")
    if not is_host:
        team_storage_check(
            challenge_id=phase.challenge_id,
            team_id=participation.team_id,
            incoming=size + pending_bytes,
        )
        _check_quotas(quota_state(phase=phase, team_id=participation.team_id))


STORE_BEFORE_CHECKING_BYTES = 1024 * 1024

# The team's lock, taken by every upload: its id only, the SQL compiled once.
_LOCK_PARTICIPATION = Prepared(
    lambda pk: (
        ChallengeParticipation.objects.select_for_update()
        .filter(pk=pk)
        .values_list("pk", flat=True)
    ),
    int,
)


def submission_create(
    *,
    submitter: Submitter,
    upload: UploadedFile,
    fields: SubmissionFields = SubmissionFields(),
    pk: int | None = None,
    sha256: str | None = None,
) -> Submission:
    """Accept a submission file: checks, then stream to storage, then quotas under a row lock.

    The file goes to storage before the lock so the lock is held for milliseconds, not for
    the upload; a refused submission's file is deleted again. `pk`: an id reserved earlier
    (`submission_reserve_id`), for uploads that announce their id before the file arrives.
    `sha256`: the file's, when the caller has just checked it (a finished resumable upload,
    up to 10 GiB): it is not read once more to hash it. `submitter`: from `access_submitter`;
    a host's submission makes the host team's participation on first use.
    """
    now = timezone.now()
    user, phase, is_host = submitter.user, submitter.phase, submitter.is_host
    participation = submitter_participation(submitter)
    if fields.is_baseline and participation is not None:
        require_challenge_host(
            user, phase.challenge, _("add baseline submissions"), is_host=is_host
        )
    # Tournament phases take models and round predictions (challenges.tournaments).
    _check_may_submit(
        user,
        phase,
        participation,
        is_host=is_host,
        now=now,
        tournament="upload a model to /api/challenges/<id>/phases/<phase>/tournament/models/ "
        "or predictions for the open round to .../tournament/rounds/<number>/submissions/.",
    )
    problem = bidi_problem(fields.method_name, what=_("Method name"))
    if problem:
        raise SubmissionRefused(problem, field="method_name")
    _check_file(phase, upload)
    meta = validate_meta_attributes(phase, fields.meta_attributes)
    team_id = participation.team_id
    if not is_host and upload.size > STORE_BEFORE_CHECKING_BYTES:
        # Before the file is stored; again under the lock below, where concurrent uploads
        # of the team are serialised. (A small file is checked there only: storing it and
        # removing it again on refusal costs less than asking twice for every upload.)
        team_storage_check(challenge_id=phase.challenge_id, team_id=team_id, incoming=upload.size)

    upload.seek(0)
    if sha256 is None:
        sha, size = sha256_stream(upload)
        upload.seek(0)
    else:
        sha, size = sha256, upload.size
    folder = f"submissions/{phase.challenge_id}/{phase.pk}/{team_id}"
    path = default_storage.save(
        f"{folder}/{sha[:16]}-{safe_basename(upload.name or 'submission')}", upload
    )
    try:
        with transaction.atomic():
            # The row lock serialises concurrent submissions of one team: the count and
            # the insert below cannot interleave with another request's.
            if not _LOCK_PARTICIPATION(participation.pk):
                raise ChallengeParticipation.DoesNotExist(
                    "ChallengeParticipation matching query does not exist."
                )
            if not is_host:
                quotas_and_storage_check(phase=phase, team_id=team_id, incoming=size, now=now)
            public = initial_is_public(phase, fields.is_public)
            if public and phase.is_restricted_to_select_one_submission:
                # One public submission per team: the new one replaces the old (as in EvalAI).
                Submission.objects.filter(phase=phase, team_id=team_id, is_public=True).update(
                    is_public=False
                )
            submission = Submission(
                pk=pk,
                phase=phase,
                team_id=team_id,
                created_by=user,
                input_file=path,
                file_name=(upload.name or "submission")[:255],
                input_sha256=sha,
                input_size=size,
                method_name=fields.method_name,
                method_description=fields.method_description,
                project_url=fields.project_url,
                publication_url=fields.publication_url,
                meta_attributes=meta,
                is_public=public,
                is_baseline=fields.is_baseline,
                is_late=not is_host and submission_is_late(phase, now),
                submitted_at=now,
            )
            insert(submission)  # Submission.objects.create(), its SQL compiled once
            if public and phase.is_restricted_to_select_one_submission:
                leaderboard_refresh(phase=phase, team_ids=[team_id])
            challenge = phase.challenge
            # robust: once the row is committed the submission is accepted, whatever
            # happens to the enqueue (the database going away right after the commit). An
            # error here would answer 503, so the client sends it again, and the except
            # below would delete the file the committed row points at; the sweeper sends
            # a row left `submitted` instead.
            transaction.on_commit(
                lambda: submission_enqueue(submission_id=submission.pk, challenge=challenge),
                robust=True,
            )
    except BaseException:
        default_storage.delete(path)
        raise
    return submission


def submission_reserve_id() -> int:
    """A submission id no insert will take: EvalAI's large-file upload tells the client its
    submission's id before the file (and so the submission) exists."""
    from django.db import connection

    table = Submission._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
            return int(cursor.fetchone()[0])
        if connection.vendor == "sqlite":
            # AUTOINCREMENT never reuses an id at or below sqlite_sequence's value.
            with transaction.atomic():
                cursor.execute("UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = %s", [table])
                if cursor.rowcount == 0:
                    cursor.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, 1)", [table]
                    )
                cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
                return int(cursor.fetchone()[0])
    raise SubmissionRefused(
        _("Reserving submission ids is not supported on %(vendor)s.")
        % {"vendor": connection.vendor}
    )
