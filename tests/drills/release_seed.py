"""Fill every table of a database with the PREVIOUS release's own code (run by
tests/drills/test_upgrade.py, copied into that release's checkout and run there with
`python release_seed.py`; prints what it made as JSON).

It imports only what that release has: its services, and the helpers of its own test
suite. When the drill's pinned release moves on, check this still runs against it; it
never has to follow the current tree's services, which it does not run against.
"""

# The imports name the pinned release's modules (challenges.services.tournaments is a
# package of its own since), so ruff cannot sort them against the current tree.
# ruff: noqa: I001

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import django

django.setup()

from django.contrib.admin.models import ADDITION, LogEntry  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group, Permission  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.utils import timezone  # noqa: E402

from challenges.models import Challenge, ChallengeParticipation  # noqa: E402
from challenges.services.bundles import challenge_load_bundle  # noqa: E402
from challenges.services.challenges import challenge_approve  # noqa: E402
from challenges.services.participation import (  # noqa: E402
    challenge_participate,
    participant_team_create,
)
from challenges.services.resumable import Target, resumable_upload_create  # noqa: E402
from challenges.services.submissions import (  # noqa: E402
    EvaluationRecord,
    phase_splits_by_codename,
    submission_claim,
    submission_create,
    submission_record_outcome,
)
from challenges.services.teams import host_team_create  # noqa: E402
from challenges.services.tokens import token_get_or_create, token_rotate  # noqa: E402
from challenges.services.tournaments import (  # noqa: E402
    round_open,
    round_submission_create,
    tournament_model_mark_current,
    tournament_model_upload,
)
from challenges.services.webhooks import webhook_create, webhook_send_test  # noqa: E402
from tests import tournament_helpers as th  # noqa: E402
from tests.workers.pipeline_helpers import GOOD_EVALUATE, script_bundle  # noqa: E402

User = get_user_model()


def upload(content: bytes | str, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content)


def finish(submission, score: float) -> None:
    """What a worker records for a scored attempt, without running one."""
    claimed = submission_claim(
        submission_id=submission.pk, worker="seed@release/1", time_limit_s=60
    )
    assert claimed is not None, submission.pk
    scores = {"Score": score, "Other": score * 2}
    done = submission_record_outcome(
        submission=claimed,
        record=EvaluationRecord(
            ok=True,
            scores={"main": scores, "hidden": scores},
            missing_splits=[],
            stdout=f"scored {submission.pk}\n",
        ),
        splits=phase_splits_by_codename(claimed.phase_id),
    )
    assert done, submission.pk


def main() -> dict:
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw-admin-release")
    host = User.objects.create_user("host", "host@example.com", "pw-host-release")
    people = [
        User.objects.create_user(name, f"{name}@example.com", f"pw-{name}-release")
        for name in ("ada", "grace", "linus")
    ]
    # Django's own tables: groups and permissions, an admin log line, a session.
    reviewers = Group.objects.create(name="Reviewers")
    reviewers.permissions.add(Permission.objects.get(codename="view_challenge"))
    host.groups.add(reviewers)
    host.user_permissions.add(Permission.objects.get(codename="change_challenge"))
    session = SessionStore()
    session["_auth_user_id"] = str(host.pk)
    session.create()

    team = host_team_create(name="Release hosts", creator=host)
    challenge = challenge_load_bundle(
        source=io.BytesIO(script_bundle(GOOD_EVALUATE, title="Release probe")),
        user=host,
        host_team=team,
    ).challenge
    challenge_approve(challenge=challenge, reviewer=admin)
    Challenge.objects.filter(pk=challenge.pk).update(published=True)
    challenge.refresh_from_db()
    LogEntry.objects.create(
        user=admin,
        content_type=ContentType.objects.get_for_model(Challenge),
        object_id=str(challenge.pk),
        object_repr=challenge.title,
        action_flag=ADDITION,
        change_message="approved for the release drill",
    )
    phase = challenge.phases.get()

    submissions = []
    for k, person in enumerate(people):
        crew = participant_team_create(name=f"crew-{person.username}", creator=person)
        participation = challenge_participate(
            challenge=challenge, team=crew, user=person, accept_terms=True
        )
        for value in (k + 1, k + 40):
            submission = submission_create(
                user=person,
                phase=phase,
                participation=participation,
                upload=upload(str(value), "value.txt"),
                method_name=f"method {value}",
            )
            finish(submission, 1.0 / (1 + abs(42 - value)))
            submissions.append(submission.pk)
    # One left waiting, as an upgrade may find it.
    waiting = submission_create(
        user=people[0],
        phase=phase,
        participation=ChallengeParticipation.objects.get(
            challenge=challenge, team__name="crew-ada"
        ),
        upload=upload("7", "value.txt"),
    )

    # A resumable upload in progress.
    ada_participation = ChallengeParticipation.objects.get(
        challenge=challenge, team__name="crew-ada"
    )
    resumable_upload_create(
        user=people[0],
        target=Target(kind="submission", phase=phase, participation=ada_participation),
        file_name="big.txt",
        length=3,
        sha256=hashlib.sha256(b"123").hexdigest(),
    )
    # Webhooks, and a delivery of the test ping.
    hook = webhook_create(
        user=people[0],
        team=ada_participation.team,
        challenge=challenge,
        url="http://127.0.0.1:9/hook",
    )
    webhook_send_test(user=people[0], webhook=hook)

    # A tournament: a model per team, a round open, a round submission.
    tournament = challenge_load_bundle(
        source=io.BytesIO(th.tournament_bundle()), user=host, host_team=team
    ).challenge
    challenge_approve(challenge=tournament, reviewer=admin)
    Challenge.objects.filter(pk=tournament.pk).update(published=True)
    tournament.refresh_from_db()
    rounds_phase = tournament.phases.get()
    entrant = challenge_participate(
        challenge=tournament, team=ada_participation.team, user=people[0], accept_terms=True
    )
    model = tournament_model_upload(
        user=people[0], phase=rounds_phase, participation=entrant, upload=upload(b"model", "m.pkl")
    )
    tournament_model_mark_current(user=people[0], model=model)
    opened = round_open(
        user=host,
        phase=rounds_phase,
        live_features=upload(th.live_features(1), "live.csv"),
        data_version="v1",
        closes_at=timezone.now() + dt.timedelta(hours=2),
    )
    round_submission_create(
        user=people[0],
        round=opened,
        participation=entrant,
        upload=upload(th.predictions_csv(1, lambda f: f / 10), "p.csv"),
    )

    tokens = {user.username: token_get_or_create(user=user).key for user in [admin, host, *people]}
    # A rotated token: the audit log has the rotation; the new key is the one that works.
    tokens["grace"] = token_rotate(user=people[1]).key
    return {
        "challenge_id": challenge.pk,
        "tournament_id": tournament.pk,
        "submission_ids": submissions,
        "waiting_id": waiting.pk,
        "tokens": tokens,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
