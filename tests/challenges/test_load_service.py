"""Loading bundles into the database and storage: whole or nothing, re-uploads, access."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from challenges.access import AccessDenied
from challenges.bundle import BundleError
from challenges.models import (
    Challenge,
    ChallengePhase,
    ChallengePhaseSplit,
    DatasetSplit,
    EvaluationScript,
    Leaderboard,
)
from challenges.services.bundles import challenge_load_bundle

pytestmark = pytest.mark.django_db


def rezip(
    source: Path, *, replace: dict[str, bytes] | None = None, drop: set[str] = frozenset()
) -> io.BytesIO:
    """A copy of `source` with some members replaced or dropped."""
    replace = replace or {}
    out = io.BytesIO()
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            zout.writestr(info.filename, replace.pop(info.filename, None) or zin.read(info))
        for name, content in replace.items():
            zout.writestr(name, content)
    out.seek(0)
    return out


def nested_script_with(source: Path, extra: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(source) as zin:
        inner = zin.read("evaluation_script.zip")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(inner)) as zi, zipfile.ZipFile(out, "w") as zo:
        for info in zi.infolist():
            zo.writestr(info.filename, zi.read(info))
        for name, content in extra.items():
            zo.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize("starter", ["tabular_classification", "numerai_regression"])
def test_every_starter_loads_whole(starter, starter_zips, users, host_teams, media_files):
    result = challenge_load_bundle(
        source=starter_zips[starter], user=users["alice"], host_team=host_teams["alice"]
    )
    challenge = result.challenge
    assert result.created and result.script.version == 1 and len(result.script.sha256) == 64
    assert not challenge.approved_by_admin and challenge.review == Challenge.Review.PENDING
    phases = list(challenge.phases.all())
    assert len(phases) >= 2
    for phase in phases:
        assert phase.test_annotation.name and len(phase.test_annotation_sha256) == 64
        assert phase.phase_splits.exists()
        with phase.test_annotation.open("rb") as fh:
            assert fh.read(1)
    assert challenge.description.strip()
    # Everything it wrote sits under this challenge's folder of MEDIA_ROOT.
    assert media_files()
    assert all(f"challenges/{challenge.pk}/" in str(p) for p in media_files())


def test_a_test_phase_has_a_public_and_a_host_only_split(starter_zips, users, host_teams):
    challenge = challenge_load_bundle(
        source=starter_zips["tabular_classification"],
        user=users["alice"],
        host_team=host_teams["alice"],
    ).challenge
    test = challenge.phases.get(codename="test")
    visibility = {
        ps.dataset_split.codename: ps.visibility
        for ps in test.phase_splits.select_related("dataset_split")
    }
    assert visibility == {
        "public": ChallengePhaseSplit.Visibility.PUBLIC,
        "private": ChallengePhaseSplit.Visibility.HOST,
    }


def test_a_half_valid_bundle_leaves_no_rows_and_no_files(
    starter_zips, users, host_teams, media_files
):
    broken = rezip(
        starter_zips["tabular_classification"],
        drop={"evaluation_script.zip"},
    )
    before = {
        m: m.objects.count()
        for m in (Challenge, ChallengePhase, DatasetSplit, Leaderboard, EvaluationScript)
    }
    with pytest.raises(BundleError) as excinfo:
        challenge_load_bundle(source=broken, user=users["alice"], host_team=host_teams["alice"])
    assert any("evaluation_script" in str(p) for p in excinfo.value.errors)
    assert {m: m.objects.count() for m in before} == before
    assert media_files() == set()


def test_a_failure_while_writing_rolls_back_rows_and_files(
    starter_zips, users, host_teams, media_files, monkeypatch
):
    """Files are written before the last rows; a crash there must leave nothing behind."""
    import challenges.services.bundles as service

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "_store_script", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        challenge_load_bundle(
            source=starter_zips["tabular_classification"],
            user=users["alice"],
            host_team=host_teams["alice"],
        )
    assert Challenge.objects.count() == 0 and ChallengePhase.objects.count() == 0
    assert media_files() == set()


def test_only_hosts_of_the_team_can_load_for_it(starter_zips, users, host_teams, media_files):
    for outsider in ("bob", "charlie"):
        with pytest.raises(AccessDenied, match="not a member of the host team 'Alice Labs'"):
            challenge_load_bundle(
                source=starter_zips["tabular_classification"],
                user=users[outsider],
                host_team=host_teams["alice"],
            )
    assert Challenge.objects.count() == 0 and media_files() == set()


def test_a_reupload_adds_a_script_version_and_replaces_annotations(starter_zips, users, host_teams):
    zip_path = starter_zips["tabular_classification"]
    first = challenge_load_bundle(
        source=zip_path, user=users["alice"], host_team=host_teams["alice"]
    )
    dev = first.challenge.phases.get(codename="dev")
    old_annotation, old_sha = dev.test_annotation.name, dev.test_annotation_sha256

    # Same bundle again: nothing changed, no new version.
    again = challenge_load_bundle(
        source=zip_path,
        user=users["alice"],
        host_team=host_teams["alice"],
        challenge=first.challenge,
    )
    assert not again.created and not again.script_changed and again.script.pk == first.script.pk

    with zipfile.ZipFile(zip_path) as zf:
        annotation_member = next(
            n for n in zf.namelist() if n.startswith("annotations/") and "dev" in n
        )
        new_annotation = zf.read(annotation_member) + b"\n"
    changed = rezip(
        zip_path,
        replace={
            "evaluation_script.zip": nested_script_with(zip_path, {"VERSION": b"2\n"}),
            annotation_member: new_annotation,
        },
    )
    second = challenge_load_bundle(
        source=changed,
        user=users["alice"],
        host_team=host_teams["alice"],
        challenge=first.challenge,
    )
    assert second.challenge.pk == first.challenge.pk and second.script_changed
    assert list(
        EvaluationScript.objects.filter(challenge=first.challenge).values_list("version", flat=True)
    ) == [1, 2]
    assert second.script.sha256 != first.script.sha256
    dev.refresh_from_db()
    assert dev.test_annotation_sha256 != old_sha and dev.test_annotation.name != old_annotation
    # The old version's files are kept: submissions scored by it can be reproduced.
    assert EvaluationScript.objects.get(
        challenge=first.challenge, version=1
    ).archive.storage.exists(first.script.archive.name)
    assert (
        Challenge.objects.count() == 1
        and ChallengePhase.objects.filter(challenge=first.challenge).count() == 2
    )


def test_a_reupload_for_another_teams_challenge_is_refused(starter_zips, users, host_teams):
    first = challenge_load_bundle(
        source=starter_zips["tabular_classification"],
        user=users["alice"],
        host_team=host_teams["alice"],
    )
    with pytest.raises(AccessDenied):
        challenge_load_bundle(
            source=starter_zips["tabular_classification"],
            user=users["bob"],
            host_team=host_teams["bob"],
            challenge=first.challenge,
        )


def test_approve_on_load(starter_zips, users, host_teams):
    result = challenge_load_bundle(
        source=starter_zips["numerai_regression"],
        user=users["alice"],
        host_team=host_teams["alice"],
        approve=True,
    )
    assert (
        result.challenge.approved_by_admin and result.challenge.review == Challenge.Review.APPROVED
    )
