"""Who sees which rows, and who may change what. The cast and roles of tests/conftest.py:
charlie's team is "Mine", dave's (taking part in the same challenge) "Other"; erin is the
outsider.
"""

from __future__ import annotations

import pytest
from django.test import Client

from challenges.models import ChallengeParticipation, ChallengePhaseSplit, Submission
from challenges.services.hosting import participation_set_banned
from tests.challenges.leaderboard_helpers import board_url, load, scored, team, teams_of
from tests.conftest import ROLES
from tests.workers.pipeline_helpers import submit

pytestmark = pytest.mark.django_db

# The roles of tests/conftest.py, in the order of EXPECTED's columns.
COLUMNS = ["anonymous", "outsider", "other_team", "participant", "other_host", "host", "admin"]


@pytest.fixture
def cast(users, django_user_model):
    users["dave"] = django_user_model.objects.create_user("dave", "dave@example.org", "pw")
    users["erin"] = django_user_model.objects.create_user("erin", "erin@example.org", "pw")
    return users


def _world(cast, host_teams, django_user_model, **options):
    challenge = load(cast, host_teams["alice"], **options)
    mine = team(django_user_model, challenge, "Mine", user=cast["charlie"])
    other = team(django_user_model, challenge, "Other", user=cast["dave"])
    subs = {
        "mine": scored(challenge, mine, {"Acc": 0.7}),
        "other": scored(challenge, other, {"Acc": 0.9}),
    }
    return challenge, subs


@pytest.fixture
def world(cast, host_teams, django_user_model):
    return _world(cast, host_teams, django_user_model)


def client_for(api, role):
    return api(ROLES[role])


EXPECTED = {
    # endpoint: status per role, in COLUMNS order
    "public board": [200, 200, 200, 200, 200, 200, 200],
    "hidden board": [404, 404, 404, 404, 404, 200, 200],
    "me": [401, 200, 200, 200, 200, 200, 200],
    "history": [200, 200, 200, 200, 200, 200, 200],
    "hidden history": [404, 404, 404, 404, 404, 200, 200],
    "csv": [401, 403, 403, 403, 403, 200, 200],
    # A hidden split does not exist for those who may not see it.
    "hidden split visibility": [401, 404, 404, 404, 404, 200, 200],
    "public split visibility": [401, 403, 403, 403, 403, 200, 200],
    "own submission is_public": [401, 404, 404, 200, 404, 403, 403],
    "submission is_baseline": [401, 404, 404, 403, 404, 200, 200],
}


def _call(api, role, endpoint, challenge, subs):
    c = client_for(api, role)
    base = f"/api/v1/challenges/{challenge.pk}/phases/dev/splits"
    if endpoint == "public board":
        return c.get(board_url(challenge))
    if endpoint == "hidden board":
        return c.get(board_url(challenge, "hidden"))
    if endpoint == "me":
        return c.get(board_url(challenge, tail="me/"))
    if endpoint == "history":
        return c.get(board_url(challenge, tail="history/"))
    if endpoint == "hidden history":
        return c.get(board_url(challenge, "hidden", tail="history/"))
    if endpoint == "csv":
        return c.get(f"{base}/main/leaderboard.csv")
    if endpoint == "hidden split visibility":
        return c.patch(f"{base}/hidden/", {"visibility": 2}, format="json")
    if endpoint == "public split visibility":
        return c.patch(f"{base}/main/", {"visibility": 3}, format="json")
    if endpoint == "own submission is_public":
        return c.patch(
            f"/api/v1/submissions/{subs['mine'].pk}/", {"is_public": False}, format="json"
        )
    if endpoint == "submission is_baseline":
        return c.patch(
            f"/api/v1/submissions/{subs['mine'].pk}/", {"is_baseline": True}, format="json"
        )
    raise AssertionError(endpoint)


@pytest.mark.parametrize("role", COLUMNS)
@pytest.mark.parametrize("endpoint", list(EXPECTED))
def test_every_leaderboard_endpoint_for_every_role(api, world, role, endpoint):
    challenge, subs = world
    response = _call(api, role, endpoint, challenge, subs)
    expected = EXPECTED[endpoint][COLUMNS.index(role)]
    assert response.status_code == expected, (role, endpoint, response.content[:300])


@pytest.mark.parametrize(
    ("role", "seen"),
    [
        ("anonymous", []),
        ("outsider", []),
        ("other_team", ["Other"]),
        ("participant", ["Mine"]),
        ("other_host", []),
        ("host", ["Other", "Mine"]),
        ("admin", ["Other", "Mine"]),
    ],
)
def test_a_host_and_team_split_shows_each_team_only_its_own_rows(api, world, role, seen):
    challenge, _subs = world
    ChallengePhaseSplit.objects.filter(dataset_split__codename="hidden").update(visibility=2)
    assert teams_of(client_for(api, role).get(board_url(challenge, "hidden"))) == seen


def test_private_submissions_stay_off_the_public_board_until_made_public(api, world):
    challenge, subs = world
    Submission.objects.filter(pk=subs["mine"].pk).update(is_public=False)
    from challenges.services.leaderboard_refresh import leaderboard_rebuild

    leaderboard_rebuild(phase=subs["mine"].phase)
    assert teams_of(api(None).get(board_url(challenge))) == ["Other"]
    # The host sees every submission when asking for it.
    assert teams_of(api("alice").get(board_url(challenge), {"scope": "all"})) == ["Other", "Mine"]
    url = f"/api/v1/submissions/{subs['mine'].pk}/"
    assert api("charlie").patch(url, {"is_public": True}, format="json").status_code == 200
    assert teams_of(api(None).get(board_url(challenge))) == ["Other", "Mine"]
    assert (
        api("charlie").patch(url, {"is_public": False}, format="json").json()["is_public"] is False
    )
    assert teams_of(api(None).get(board_url(challenge))) == ["Other"]


def test_a_hidden_split_is_not_found_whatever_the_parameters(api, world):
    challenge, _ = world
    assert api("charlie").get(board_url(challenge, "hidden"), {"scope": "all"}).status_code == 404
    assert (
        api("charlie").get(board_url(challenge, "hidden"), {"order_by": "Nope"}).status_code == 404
    )


def test_participants_cannot_choose_the_scope(api, world):
    challenge, _ = world
    response = api("charlie").get(board_url(challenge), {"scope": "all"})
    assert response.status_code == 403 and "Only the challenge's hosts" in response.json()["detail"]
    bad = api("alice").get(board_url(challenge), {"scope": "everything"})
    assert bad.status_code == 400 and "public, all, final" in bad.json()["detail"]


def test_a_locked_phase_keeps_every_submission_public(cast, host_teams, django_user_model, api):
    challenge, subs = _world(
        cast, host_teams, django_user_model, phase={"is_submission_public": True}
    )
    response = api("charlie").patch(
        f"/api/v1/submissions/{subs['mine'].pk}/", {"is_public": False}, format="json"
    )
    assert response.status_code == 400 and "cannot be hidden" in response.json()["detail"]
    created = submit(api("charlie"), challenge, "dev", "1", name="g.txt", is_public="false")
    assert Submission.objects.get(pk=created.json()["id"]).is_public is True


def test_one_public_submission_per_team_where_the_phase_restricts_it(
    cast, host_teams, django_user_model, api
):
    challenge, subs = _world(
        cast,
        host_teams,
        django_user_model,
        phase={"is_restricted_to_select_one_submission": True},
    )
    mine = subs["mine"]
    better = scored(challenge, mine.team, {"Acc": 0.95})
    Submission.objects.filter(pk=better.pk).update(is_public=False)
    api("charlie").patch(f"/api/v1/submissions/{mine.pk}/", {"is_public": True}, format="json")
    assert api(None).get(board_url(challenge)).json()["rows"][1]["scores"][0] == 0.7
    api("charlie").patch(f"/api/v1/submissions/{better.pk}/", {"is_public": True}, format="json")
    public = set(
        Submission.objects.filter(team=mine.team, is_public=True).values_list("pk", flat=True)
    )
    assert public == {better.pk}
    assert teams_of(api(None).get(board_url(challenge))) == ["Mine", "Other"]
    # New submissions stay private: the team's pick is not replaced behind its back.
    created = submit(api("charlie"), challenge, "dev", "1", name="g.txt")
    assert Submission.objects.get(pk=created.json()["id"]).is_public is False


def test_hosts_submit_baselines_that_show_marked_and_unranked(api, world, users):
    challenge, _subs = world
    created = submit(api("alice"), challenge, "dev", "1", name="base.txt", is_baseline="true")
    assert created.status_code == 201, created.content
    baseline = Submission.objects.get(pk=created.json()["id"])
    host_team = ChallengeParticipation.objects.get(challenge=challenge, is_host_team=True)
    assert baseline.team_id == host_team.team_id and baseline.is_baseline
    from tests.challenges.leaderboard_helpers import finish

    finish(baseline, {"main": {"Acc": 0.8}, "hidden": {"Acc": 0.8}})
    trial = submit(api("alice"), challenge, "dev", "2", name="trial.txt").json()["id"]
    finish(Submission.objects.get(pk=trial), {"main": {"Acc": 0.99}, "hidden": {"Acc": 0.99}})
    got = api("charlie").get(board_url(challenge)).json()["rows"]
    # The baseline sits between Other (0.9) and Mine (0.7) and takes no rank; the hosts'
    # trial run (0.99) stays off the public ranking.
    assert [(r["rank"], r["team"], r["is_baseline"]) for r in got] == [
        (1, "Other", False),
        (None, "Alice Labs (hosts)", True),
        (2, "Mine", False),
    ]
    # Hosts see their trial run with `scope=all`, unranked too.
    everything = api("alice").get(board_url(challenge), {"scope": "all"}).json()["rows"]
    assert [(r["rank"], r["is_host_team"]) for r in everything][:2] == [(None, True), (1, False)]


def test_hosts_mark_any_submission_as_baseline(api, world):
    challenge, subs = world
    url = f"/api/v1/submissions/{subs['other'].pk}/"
    assert api("alice").patch(url, {"is_baseline": True}, format="json").status_code == 200
    got = api(None).get(board_url(challenge)).json()["rows"]
    assert [(r["rank"], r["team"], r["is_baseline"]) for r in got] == [
        (None, "Other", True),
        (1, "Mine", False),
    ]


def test_banned_teams_vanish_and_come_back_when_the_ban_is_lifted(api, world):
    challenge, _subs = world
    participation = ChallengeParticipation.objects.get(challenge=challenge, team__name="Other")
    participation_set_banned(participation=participation, banned=True, reason="cheating")
    for who in (None, "charlie", "alice"):
        assert teams_of(api(who).get(board_url(challenge))) == ["Mine"]
    assert teams_of(api("alice").get(board_url(challenge, "hidden"))) == ["Mine"]
    assert (
        api(None).get(board_url(challenge, tail="history/")).json()["points"][0]["team"] == "Mine"
    )
    participation_set_banned(participation=participation, banned=False)
    assert teams_of(api(None).get(board_url(challenge))) == ["Other", "Mine"]


def test_admins_ban_teams_from_the_django_admin(api, world, users):
    challenge, _subs = world
    participation = ChallengeParticipation.objects.get(challenge=challenge, team__name="Other")
    client = Client()
    client.force_login(users["admin"])
    response = client.post(
        "/admin/challenges/challengeparticipation/",
        {"action": "ban", "_selected_action": [participation.pk]},
    )
    assert response.status_code == 302
    participation.refresh_from_db()
    assert participation.is_banned and "admin" in participation.banned_reason
    assert teams_of(api(None).get(board_url(challenge))) == ["Mine"]
    page = client.get(f"/admin/challenges/challengeparticipation/{participation.pk}/change/")
    assert page.status_code == 200


def test_an_anonymous_leaderboard_hides_names_from_all_but_hosts(
    cast, host_teams, django_user_model, api
):
    challenge, _subs = _world(cast, host_teams, django_user_model, anonymous_leaderboard=True)
    assert teams_of(api(None).get(board_url(challenge))) == [None, None]
    # A team still recognises itself.
    assert teams_of(api("charlie").get(board_url(challenge))) == [None, "Mine"]
    assert teams_of(api("alice").get(board_url(challenge))) == ["Other", "Mine"]
    history = api(None).get(board_url(challenge, tail="history/")).json()["points"]
    assert {p["team"] for p in history} == {None}
    rows = api(None).get(board_url(challenge)).json()["rows"]
    assert all(r["method_name"] == "" and "submission_id" not in r for r in rows)


def test_hosts_flip_a_split_public_and_back(api, world):
    challenge, _subs = world
    url = f"/api/v1/challenges/{challenge.pk}/phases/dev/splits/hidden/"
    assert api("charlie").get(board_url(challenge, "hidden")).status_code == 404
    assert api("alice").patch(url, {"visibility": 3}, format="json").json()["visibility"] == 3
    assert teams_of(api("charlie").get(board_url(challenge, "hidden"))) == ["Other", "Mine"]
    assert api("alice").patch(url, {"visibility": 1}, format="json").status_code == 200
    assert api("charlie").get(board_url(challenge, "hidden")).status_code == 404
    bad = api("alice").patch(url, {"visibility": 7}, format="json")
    assert bad.status_code == 400 and "visibility" in bad.json()


def test_my_standing_shows_my_teams_rank(api, world):
    challenge, _subs = world
    me = api("charlie").get(board_url(challenge, tail="me/")).json()
    assert [(r["rank"], r["team"]) for r in me["rows"]] == [(2, "Mine")]
    assert me["ranked_teams"] == 2
    nobody = api("erin").get(board_url(challenge, tail="me/")).json()
    assert nobody["rows"] == [] and nobody["team_id"] is None


def test_hosts_export_the_leaderboard_as_csv(api, world):
    challenge, subs = world
    response = api("alice").get(
        f"/api/v1/challenges/{challenge.pk}/phases/dev/splits/main/leaderboard.csv"
    )
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].startswith(
        "rank,team,team_id,submission_id,is_baseline,is_host_team,submitted_at (UTC),Acc,Err,F1"
    )
    assert lines[1].startswith(f"1,Other,{subs['other'].team_id},{subs['other'].pk},False,False,")
    assert ",0.9,,," in lines[1]
    assert len(lines) == 3


def test_the_history_is_the_best_score_over_time(api, world):
    challenge, subs = world
    # Mine 0.7 came first, then Other 0.9; a later 0.8 is no record.
    scored(challenge, subs["mine"].team, {"Acc": 0.8})
    points = api(None).get(board_url(challenge, tail="history/")).json()["points"]
    assert [(p["team"], p["value"]) for p in points] == [("Mine", 0.7), ("Other", 0.9)]
    err = api(None).get(board_url(challenge, tail="history/"), {"order_by": "Err"})
    assert err.status_code == 200 and err.json()["points"] == []
