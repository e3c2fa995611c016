"""Loading a validated bundle into the database and storage: whole or nothing."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from challenges.access import require_challenge_of_host_team, require_host_team_member
from challenges.bundle import (
    Bundle,
    BundleError,
    ChallengeSpec,
    Limits,
    PhaseSpec,
    Problem,
    load_bundle,
)
from challenges.models import (
    AuditEvent,
    Challenge,
    ChallengePhase,
    ChallengePhaseSplit,
    DatasetSplit,
    EvaluationScript,
    HostTeam,
    Leaderboard,
)
from challenges.services.audit import audit_record
from challenges.services.challenges import challenge_approve
from challenges.services.leaderboard_refresh import leaderboard_refresh
from challenges.services.scripts import challenge_prepare_environments
from challenges.services.storage import delete_quietly, deterministic_zip, store_stream

log = logging.getLogger(__name__)


class SameTitleExists(Exception):
    """The host team already has a challenge with this bundle's title: most likely the
    upload is meant as a new version of it. The message says both ways on."""

    def __init__(self, existing: Challenge) -> None:
        self.existing = existing
        super().__init__(
            _(
                "Your host team already has a challenge titled %(title)s (id %(id)s). To "
                "upload a new version of it, upload the zip on that challenge's page (or POST "
                "it to /api/v1/challenges/%(id)s/bundle/); to create a second challenge with "
                "the same title, confirm that it is a new challenge (new_challenge)."
            )
            % {"title": repr(existing.title), "id": existing.pk}
        )


def _refuse_same_title(host_team: HostTeam, title: str) -> None:
    existing = Challenge.objects.filter(host_team=host_team, title=title).order_by("-pk").first()
    if existing is not None:
        raise SameTitleExists(existing)


@dataclass
class LoadResult:
    challenge: Challenge
    created: bool
    script: EvaluationScript
    script_changed: bool
    warnings: list[Problem] = field(default_factory=list)


def bundle_limits() -> Limits:
    return Limits(
        max_entries=settings.BUNDLE_MAX_ENTRIES,
        max_total_uncompressed_bytes=settings.BUNDLE_MAX_UNCOMPRESSED_BYTES,
        max_compression_ratio=float(settings.BUNDLE_MAX_COMPRESSION_RATIO),
    )


def bundle_images() -> dict[str, Any]:
    """The operator's stand-ins for CodaLab/Codabench docker images (docs/codalab.md)."""
    images = {k.strip(): v.strip() for k, v in settings.CODALAB_IMAGE_MAP.items()}
    return {"images": images, "default_image": settings.CODALAB_DEFAULT_IMAGE}


def bundle_validate(*, source: str | Path | IO[bytes]) -> list[Problem]:
    """Every problem of a bundle (errors and warnings); an empty list means clean."""
    try:
        with load_bundle(source, limits=bundle_limits(), **bundle_images()) as bundle:
            return list(bundle.warnings)
    except BundleError as exc:
        return list(exc.problems)


def challenge_load_bundle(
    *,
    source: str | Path | IO[bytes],
    user: AbstractBaseUser,
    host_team: HostTeam,
    challenge: Challenge | None = None,
    approve: bool = False,
    new_challenge: bool = True,
) -> LoadResult:
    """Create a challenge from a bundle, or update `challenge` from a new upload of it.

    `new_challenge=False` (the browser's and the API's default) refuses to create a second
    challenge with the title of one the host team has (SameTitleExists).

    Raises BundleError (nothing written) for an invalid bundle and AccessDenied when
    `user` is neither a host of `host_team` nor an admin. An update adds a script version when the script
    changed and replaces annotations; existing submissions are untouched.
    """
    require_host_team_member(user, host_team, staff_may=True)
    require_challenge_of_host_team(challenge, host_team)

    written: list[str] = []
    with load_bundle(source, limits=bundle_limits(), **bundle_images()) as bundle:
        if challenge is None and not new_challenge:
            _refuse_same_title(host_team, bundle.spec.title)
        try:
            with transaction.atomic():
                result = _apply(
                    bundle=bundle,
                    user=user,
                    host_team=host_team,
                    challenge=challenge,
                    written=written,
                )
                if not result.created:
                    # Labels, directions or latest-vs-best may have changed: re-derive
                    # every entry from the results.
                    for phase in result.challenge.phases.all():
                        leaderboard_refresh(phase=phase)
                if approve:
                    challenge_approve(challenge=result.challenge, reviewer=user)
                elif result.challenge.approved_by_admin and result.script_changed:
                    challenge_prepare_environments(challenge=result.challenge)
        except IntegrityError as exc:
            delete_quietly(written)
            raise BundleError(
                [
                    Problem(
                        _("The bundle conflicts with the stored challenge: %(exc)s") % {"exc": exc}
                    )
                ]
            ) from exc
        except BaseException:
            # The rows are rolled back; remove the files written for them too.
            delete_quietly(written)
            raise
    log.info(
        "challenge %s %s from bundle by %s (script v%s)",
        result.challenge.pk,
        "created" if result.created else "updated",
        user,
        result.script.version,
    )
    return result


def _apply(
    *, bundle: Bundle, user, host_team: HostTeam, challenge: Challenge | None, written: list[str]
) -> LoadResult:
    spec = bundle.spec
    warnings = list(bundle.warnings)
    created = challenge is None
    if challenge is None:
        challenge = Challenge(host_team=host_team, created_by=user)
    else:
        challenge = Challenge.objects.select_for_update().get(pk=challenge.pk)
    _set_challenge_fields(challenge, spec)
    challenge.save()
    folder = f"challenges/{challenge.pk}"

    if spec.image:
        with bundle.open(spec.image) as stream:
            path, _sha, _size = store_stream(
                folder=f"{folder}/images", name=spec.image, stream=stream
            )
        written.append(path)
        challenge.image.name = path
        challenge.save(update_fields=["image"])

    leaderboards = _sync_leaderboards(challenge, spec, warnings)
    splits = _sync_splits(challenge, spec, warnings)
    phases = {}
    for phase_spec in spec.phases:
        phases[phase_spec.id] = _sync_phase(challenge, phase_spec, bundle, folder, written)
    stale = challenge.phases.exclude(bundle_id__in=list(phases))
    for phase in stale:
        warnings.append(
            Problem(
                _(
                    "Phase %(codename)s is no longer in the bundle; it is kept because submissions may refer to it."
                )
                % {"codename": repr(phase.codename)},
                file=spec.config_file,
                key="challenge_phases",
                severity="warning",
            )
        )
    for ps in spec.phase_splits:
        ChallengePhaseSplit.objects.update_or_create(
            phase=phases[ps.challenge_phase_id],
            dataset_split=splits[ps.dataset_split_id],
            defaults={
                "leaderboard": leaderboards[ps.leaderboard_id],
                "visibility": ps.visibility,
                "leaderboard_decimal_precision": ps.leaderboard_decimal_precision,
                "is_leaderboard_order_descending": ps.is_leaderboard_order_descending,
                "show_execution_time": ps.show_execution_time,
                "show_leaderboard_by_latest_submission": ps.show_leaderboard_by_latest_submission,
            },
        )

    script, script_changed = _store_script(challenge, spec, user, folder, written)
    if script_changed:
        audit_record(
            actor=user,
            action=AuditEvent.Action.SCRIPT_VERSION,
            challenge=challenge,
            target=f"challenge {challenge.pk} script v{script.version}",
            version=script.version,
            sha256=script.sha256,
            created=created,
        )
    challenge.load_warnings = [w.as_dict() for w in warnings]
    challenge.save(update_fields=["load_warnings"])
    return LoadResult(challenge, created, script, script_changed, warnings)


def _set_challenge_fields(challenge: Challenge, spec: ChallengeSpec) -> None:
    for name in (
        "title",
        "short_description",
        "description",
        "evaluation_details",
        "terms_and_conditions",
        "submission_guidelines",
        "leaderboard_description",
        "start_date",
        "end_date",
        "published",
        "remote_evaluation",
        "is_docker_based",
        "is_registration_open",
        "anonymous_leaderboard",
        "tags",
        "domain",
        "prizes",
        "sponsors",
        "allowed_email_domains",
        "blocked_email_domains",
        "max_team_members",
        "entry_deadline",
        "team_merger_deadline",
    ):
        setattr(challenge, name, getattr(spec, name))
    challenge.config = _jsonable(spec.raw_config)


def _jsonable(value):
    """The raw YAML may hold dates; store them as ISO strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _sync_leaderboards(
    challenge: Challenge, spec: ChallengeSpec, warnings: list[Problem]
) -> dict[int, Leaderboard]:
    result = {}
    for lb in spec.leaderboards:
        schema = dict(lb.schema) or {"labels": lb.labels, "default_order_by": lb.default_order_by}
        schema.setdefault("labels", lb.labels)
        schema.setdefault("default_order_by", lb.default_order_by)
        if lb.metadata:
            schema.setdefault("metadata", lb.metadata)
        result[lb.id], _created = Leaderboard.objects.update_or_create(
            challenge=challenge, bundle_id=lb.id, defaults={"schema": _jsonable(schema)}
        )
    return result


def _sync_splits(
    challenge: Challenge, spec: ChallengeSpec, warnings: list[Problem]
) -> dict[int, DatasetSplit]:
    result = {}
    for split in spec.dataset_splits:
        result[split.id], _created = DatasetSplit.objects.update_or_create(
            challenge=challenge,
            bundle_id=split.id,
            defaults={"name": split.name, "codename": split.codename},
        )
    return result


_PHASE_FIELDS = (
    "name",
    "codename",
    "description",
    "start_date",
    "end_date",
    "leaderboard_public",
    "is_public",
    "is_submission_public",
    "max_submissions_per_day",
    "max_submissions_per_month",
    "max_submissions",
    "max_concurrent_submissions_allowed",
    "allowed_submission_file_types",
    "is_restricted_to_select_one_submission",
    "is_partial_submission_evaluation_enabled",
    "default_submission_meta_attributes",
    "submission_meta_attributes",
    "allowed_email_ids",
    "disable_logs",
    "is_submission_paused",
    "show_logs_to_participants",
    "submission_type",
    "resources",
    "max_final_submissions",
    "max_submission_size_bytes",
    "allow_late_submissions",
)


def _sync_tournament(phase: ChallengePhase, ps: PhaseSpec, store) -> None:
    """The phase's tournament settings and validation files; a phase that stops being a
    tournament keeps its rounds (and their submissions) but its settings row goes."""
    from challenges.models import Tournament

    if ps.tournament is None:
        Tournament.objects.filter(phase=phase).delete()
        return
    settings = dict(ps.tournament)
    for key in ("validation_features", "example_predictions"):
        rel = settings.pop(key, None)
        path, sha = (store(rel, "validation")[:2]) if rel else ("", "")
        settings[key], settings[f"{key}_sha256"] = path, sha
    Tournament.objects.update_or_create(phase=phase, defaults=settings)


def _sync_phase(
    challenge: Challenge, ps: PhaseSpec, bundle: Bundle, folder: str, written: list[str]
) -> ChallengePhase:
    phase = ChallengePhase.objects.filter(challenge=challenge, bundle_id=ps.id).first()
    if phase is None:
        phase = ChallengePhase(challenge=challenge, bundle_id=ps.id)
    for name in _PHASE_FIELDS:
        setattr(
            phase,
            name,
            _jsonable(getattr(ps, name)) if name.endswith("attributes") else getattr(ps, name),
        )
    phase.private_splits_reveal = ps.private_splits_reveal or ""
    phase_folder = f"{folder}/phases/{ps.id}"

    def store(path: str, kind: str) -> tuple[str, str, int]:
        with bundle.open(path) as stream:
            stored = store_stream(folder=f"{phase_folder}/{kind}", name=path, stream=stream)
        written.append(stored[0])
        return stored

    if ps.test_annotation_file:
        path, sha, _size = store(ps.test_annotation_file, "annotations")
        phase.test_annotation.name, phase.test_annotation_sha256 = path, sha
    phase.test_input.name, phase.test_input_sha256 = "", ""
    phase.test_extra.name, phase.test_extra_sha256 = "", ""
    if ps.test_input_file and ps.submission_type == "code":
        path, sha, _size = store(ps.test_input_file, "inputs")
        phase.test_input.name, phase.test_input_sha256 = path, sha
    if ps.test_extra_file and ps.submission_type == "code":
        path, sha, _size = store(ps.test_extra_file, "inputs")
        phase.test_extra.name, phase.test_extra_sha256 = path, sha
    phase.prediction_range = ps.prediction_range
    public = []
    for item in ps.public_data:
        path, sha, size = store(item, "public")
        public.append(
            {
                "name": Path(item).name,
                "bundle_path": item,
                "path": path,
                "sha256": sha,
                "size": size,
            }
        )
    phase.public_data = public
    phase.save()
    _sync_tournament(phase, ps, store)
    return phase


def _store_script(
    challenge: Challenge, spec: ChallengeSpec, user, folder: str, written: list[str]
) -> tuple[EvaluationScript, bool]:
    script_spec = spec.evaluation_script
    assert script_spec is not None  # the loader refuses a bundle without one
    current = challenge.scripts.order_by("-version").first()
    if current is not None and current.sha256 == script_spec.sha256:
        return current, False
    version = 1 if current is None else current.version + 1
    archive = deterministic_zip(script_spec.files.items())
    name = f"{folder}/scripts/v{version}-{script_spec.sha256[:12]}.zip"
    path = default_storage.save(name, ContentFile(archive))
    written.append(path)
    script = EvaluationScript.objects.create(
        challenge=challenge,
        version=version,
        sha256=script_spec.sha256,
        archive=path,
        archive_sha256=hashlib.sha256(archive).hexdigest(),
        requirements=script_spec.requirements or "",
        env_status=EvaluationScript.EnvStatus.PENDING
        if (script_spec.requirements or "").strip()
        else EvaluationScript.EnvStatus.NOT_NEEDED,
        source=script_spec.source,
        created_by=user,
    )
    return script, True
