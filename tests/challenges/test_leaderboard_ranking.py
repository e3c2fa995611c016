"""EvalAI's ranking rules, each with an ordering worked out by hand.

Labels: Acc (higher is better: the split orders descending), Err (the schema's metadata
says sort_ascending), F1. `main` is public; `hidden` is host only.
"""

from __future__ import annotations

import pytest

from challenges.models import ChallengePhaseSplit, LeaderboardEntry, Submission
from challenges.services.submissions import submission_rerun
from tests.challenges.leaderboard_helpers import (
    board_url,
    finish,
    load,
    scored,
    submit_row,
    team,
    teams_of,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenge(users, host_teams):
    return load(users, host_teams["alice"])


@pytest.fixture
def make_team(django_user_model, challenge):
    return lambda name: team(django_user_model, challenge, name)


def rows(api, challenge, who="charlie", **query):
    response = api(who).get(board_url(challenge), query)
    assert response.status_code == 200, response.content
    return response.json()["rows"]


def test_teams_rank_by_the_default_label_best_first(api, challenge, make_team):
    a, b, c = make_team("A"), make_team("B"), make_team("C")
    scored(challenge, a, {"Acc": 0.9, "Err": 0.3, "F1": 0.5})
    scored(challenge, b, {"Acc": 0.7, "Err": 0.1, "F1": 0.9})
    scored(challenge, c, {"Acc": 0.8, "Err": 0.2, "F1": 0.7})
    body = api(None).get(board_url(challenge)).json()
    assert body["order_by"] == "Acc" and body["descending"] is True
    assert [(r["rank"], r["team"]) for r in body["rows"]] == [(1, "A"), (2, "C"), (3, "B")]
    assert body["rows"][0]["scores"] == [0.9, 0.3, 0.5] and body["labels"] == ["Acc", "Err", "F1"]


def test_a_team_shows_once_with_its_best_entry(api, challenge, make_team):
    a, b = make_team("A"), make_team("B")
    scored(challenge, a, {"Acc": 0.5})
    best = scored(challenge, a, {"Acc": 0.9})
    scored(challenge, a, {"Acc": 0.6})
    scored(challenge, b, {"Acc": 0.7})
    got = rows(api, challenge, who=None)
    assert [(r["team"], r["scores"][0]) for r in got] == [("A", 0.9), ("B", 0.7)]
    assert rows(api, challenge, who="alice")[0]["submission_id"] == best.pk


def test_label_metadata_overrides_the_split_direction(api, challenge, make_team):
    a, b, c = make_team("A"), make_team("B"), make_team("C")
    scored(challenge, a, {"Acc": 0.9, "Err": 0.3})
    scored(challenge, b, {"Acc": 0.7, "Err": 0.1})
    scored(challenge, c, {"Acc": 0.8, "Err": 0.2})
    body = api(None).get(board_url(challenge), {"order_by": "Err"}).json()
    # Err sorts ascending (metadata) although the split sorts descending.
    assert body["descending"] is False
    assert [r["team"] for r in body["rows"]] == ["B", "C", "A"]
    # F1 has no metadata: the split's direction (descending).
    assert api(None).get(board_url(challenge), {"order_by": "F1"}).json()["descending"] is True


def test_an_ascending_split_keeps_metadata_overrides(users, host_teams, api, django_user_model):
    challenge = load(
        users,
        host_teams["alice"],
        main={"is_leaderboard_order_descending": False},
    )
    a, b = (team(django_user_model, challenge, n) for n in ("A", "B"))
    scored(challenge, a, {"Acc": 0.9, "Err": 0.3, "F1": 0.2})
    scored(challenge, b, {"Acc": 0.7, "Err": 0.1, "F1": 0.4})
    # Acc now ascending: B (0.7) first; Err ascending by metadata either way: B first;
    # F1 follows the split: ascending, A (0.2) first.
    assert teams_of(api(None).get(board_url(challenge))) == ["B", "A"]
    assert teams_of(api(None).get(board_url(challenge), {"order_by": "Err"})) == ["B", "A"]
    assert teams_of(api(None).get(board_url(challenge), {"order_by": "F1"})) == ["A", "B"]


def test_ordering_by_another_label_picks_each_teams_best_by_that_label(api, challenge, make_team):
    a, b = make_team("A"), make_team("B")
    by_acc = scored(challenge, a, {"Acc": 0.9, "Err": 0.5})
    by_err = scored(challenge, a, {"Acc": 0.6, "Err": 0.1})
    scored(challenge, b, {"Acc": 0.8, "Err": 0.2})
    acc = rows(api, challenge, who="alice")
    err = rows(api, challenge, who="alice", order_by="Err")
    assert [(r["team"], r["submission_id"]) for r in acc] == [
        ("A", by_acc.pk),
        ("B", acc[1]["submission_id"]),
    ]
    assert [(r["team"], r["submission_id"]) for r in err] == [
        ("A", by_err.pk),
        ("B", err[1]["submission_id"]),
    ]


def test_an_unknown_label_is_a_400_naming_the_valid_ones(api, challenge):
    response = api(None).get(board_url(challenge), {"order_by": "Loss"})
    assert response.status_code == 400
    body = response.json()
    assert body["labels"] == ["Acc", "Err", "F1"] and "'Loss' is not a label" in body["detail"]
    assert "Acc, Err, F1" in body["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/challenges/{id}/phases/nope/splits/main/leaderboard/",
        "/api/v1/challenges/{id}/phases/dev/splits/nope/leaderboard/",
        "/api/v1/challenges/999999/phases/dev/splits/main/leaderboard/",
        "/api/v1/challenges/{id}/phases/dev/splits/nope/leaderboard/me/",
        "/api/v1/challenges/{id}/phases/dev/splits/nope/leaderboard/history/",
        "/api/v1/challenges/{id}/phases/dev/splits/nope/leaderboard.csv",
    ],
)
def test_unknown_phases_and_splits_are_404(api, challenge, url):
    assert api("alice").get(url.format(id=challenge.pk)).status_code == 404


def test_a_404_for_an_unknown_split_or_phase_lists_only_what_the_reader_may_see(api, challenge):
    base = f"/api/v1/challenges/{challenge.pk}/phases"
    body = api("charlie").get(f"{base}/dev/splits/public/leaderboard/").json()
    assert (body["field"], body["choices"]) == ("split", ["main"])  # not the host-only one
    assert "its splits are: main." in body["detail"]
    hosts = api("alice").get(f"{base}/dev/splits/public/leaderboard/").json()
    assert hosts["choices"] == ["main", "hidden"]
    # A host-only split answers a participant as a missing one does.
    assert api("charlie").get(f"{base}/dev/splits/hidden/leaderboard/").json() == body | {
        "detail": body["detail"].replace("'public'", "'hidden'")
    }
    phase = api("charlie").get(f"{base}/nope/splits/main/leaderboard/")
    assert phase.status_code == 404
    assert (phase.json()["field"], phase.json()["choices"]) == ("phase", ["dev"])


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "x"}, {"offset": "-1"}])
def test_bad_paging_is_a_400(api, challenge, query):
    assert api(None).get(board_url(challenge), query).status_code == 400


def test_ties_go_to_the_earlier_submission(api, challenge, make_team):
    a, b, c = make_team("A"), make_team("B"), make_team("C")
    scored(challenge, a, {"Acc": 0.8}, minutes=30)
    scored(challenge, b, {"Acc": 0.8}, minutes=10)
    scored(challenge, c, {"Acc": 0.8}, minutes=20)
    # Within a team too: of two equal scores, the earlier submission is the entry.
    earlier = scored(challenge, c, {"Acc": 0.8}, minutes=5)
    got = rows(api, challenge, who="alice")
    assert [(r["rank"], r["team"]) for r in got] == [(1, "C"), (2, "B"), (3, "A")]
    assert got[0]["submission_id"] == earlier.pk


def test_a_missing_label_is_an_empty_cell_and_its_entry_unranked_after_the_ranked_ones(
    api, challenge, make_team
):
    a, b, c = make_team("A"), make_team("B"), make_team("C")
    scored(challenge, a, {"Acc": 0.1, "Err": 0.9, "F1": 0.1})
    scored(challenge, b, {"Err": 0.0})  # no Acc, no F1: the result lacked them
    scored(challenge, c, {"Acc": 0.2, "Err": 0.5, "F1": 0.3})
    by_acc = rows(api, challenge, order_by="Acc")
    assert [(r["rank"], r["team"]) for r in by_acc] == [(1, "C"), (2, "A"), (None, "B")]
    by_err = rows(api, challenge, order_by="Err")
    assert [(r["rank"], r["team"]) for r in by_err] == [(1, "B"), (2, "C"), (3, "A")]
    b_row = next(r for r in by_acc if r["team"] == "B")
    assert b_row["scores"] == [None, 0.0, None] and b_row["display"] == ["", "0.00", ""]


def test_a_missing_label_loses_within_a_team_too(api, challenge, make_team):
    a = make_team("A")
    scored(challenge, a, {"Err": 0.1}, minutes=1)
    with_acc = scored(challenge, a, {"Acc": 0.01}, minutes=2)
    assert rows(api, challenge, who="alice")[0]["submission_id"] == with_acc.pk


def test_decimal_precision_is_for_display_only(users, host_teams, api, django_user_model):
    challenge = load(users, host_teams["alice"], main={"leaderboard_decimal_precision": 3})
    a, b = (team(django_user_model, challenge, n) for n in ("A", "B"))
    scored(challenge, a, {"Acc": 0.12341}, minutes=1)
    scored(challenge, b, {"Acc": 0.12344}, minutes=2)
    got = api(None).get(board_url(challenge)).json()["rows"]
    # Both show as 0.123; the raw value ranks B first although it came later.
    assert [(r["team"], r["display"][0], r["scores"][0]) for r in got] == [
        ("B", "0.123", 0.12344),
        ("A", "0.123", 0.12341),
    ]


def test_execution_time_shows_only_where_the_split_says(users, host_teams, api, django_user_model):
    challenge = load(users, host_teams["alice"], main={"show_execution_time": True})
    a = team(django_user_model, challenge, "A")
    scored(challenge, a, {"Acc": 0.5}, wall_time_s=1.25)
    main = api(None).get(board_url(challenge)).json()
    assert main["show_execution_time"] is True and main["rows"][0]["execution_time_s"] == 1.25
    hidden = api("alice").get(board_url(challenge, "hidden")).json()
    assert "execution_time_s" not in hidden["rows"][0]


def test_latest_submission_mode_shows_each_teams_latest_ranked_by_score(
    users, host_teams, api, django_user_model
):
    challenge = load(
        users, host_teams["alice"], main={"show_leaderboard_by_latest_submission": True}
    )
    a, b = (team(django_user_model, challenge, n) for n in ("A", "B"))
    scored(challenge, a, {"Acc": 0.9, "Err": 0.0}, minutes=1)
    scored(challenge, a, {"Acc": 0.4, "Err": 0.9}, minutes=5)  # A's latest
    scored(challenge, b, {"Acc": 0.6, "Err": 0.5}, minutes=2)
    got = api(None).get(board_url(challenge)).json()["rows"]
    assert [(r["team"], r["scores"][0]) for r in got] == [("B", 0.6), ("A", 0.4)]
    # The latest entry is the same whatever the label: Err ranks B (0.5) before A (0.9).
    by_err = api(None).get(board_url(challenge), {"order_by": "Err"}).json()["rows"]
    assert [(r["team"], r["scores"][1]) for r in by_err] == [("B", 0.5), ("A", 0.9)]
    # The other split still shows the best.
    hidden = api("alice").get(board_url(challenge, "hidden")).json()["rows"]
    assert [(r["team"], r["scores"][0]) for r in hidden] == [("A", 0.9), ("B", 0.6)]


def test_only_finished_results_count_and_partial_ones_only_where_they_scored(
    api, challenge, make_team
):
    a, b, c = make_team("A"), make_team("B"), make_team("C")
    scored(challenge, a, {"Acc": 0.5})
    submit_row(challenge, b)  # queued, never finished
    partial = submit_row(challenge, c)
    finish(partial, {"main": {"Acc": 0.7}})  # no result for `hidden`
    assert Submission.objects.get(pk=partial.pk).status == "partially_evaluated"
    assert teams_of(api(None).get(board_url(challenge))) == ["C", "A"]
    assert teams_of(api("alice").get(board_url(challenge, "hidden"))) == ["A"]


def test_a_rerun_takes_the_entry_off_until_the_new_result(api, challenge, make_team, users):
    a, b = make_team("A"), make_team("B")
    first = scored(challenge, a, {"Acc": 0.9})
    scored(challenge, b, {"Acc": 0.5})
    submission_rerun(submission=Submission.objects.get(pk=first.pk), user=users["alice"])
    assert teams_of(api(None).get(board_url(challenge))) == ["B"]
    Submission.objects.filter(pk=first.pk).update(status="queued")
    finish(Submission.objects.get(pk=first.pk), {"main": {"Acc": 0.1}, "hidden": {"Acc": 0.1}})
    assert teams_of(api(None).get(board_url(challenge))) == ["B", "A"]


def test_paging_keeps_ranks(api, challenge, make_team):
    for i, name in enumerate("ABCDE"):
        scored(challenge, make_team(name), {"Acc": 1 - i / 10})
    body = api(None).get(board_url(challenge), {"limit": 2, "offset": 2}).json()
    assert body["count"] == 5
    assert [(r["rank"], r["team"]) for r in body["rows"]] == [(3, "C"), (4, "D")]


def test_entries_follow_a_new_bundle_version(users, host_teams, api, django_user_model):
    import io

    import yaml

    from challenges.services.bundles import challenge_load_bundle
    from tests.challenges import bundle_factory as bf
    from tests.challenges.leaderboard_helpers import config
    from tests.workers.pipeline_helpers import GOOD_EVALUATE

    challenge = load(users, host_teams["alice"])
    a, b = (team(django_user_model, challenge, n) for n in ("A", "B"))
    scored(challenge, a, {"Acc": 0.9})
    scored(challenge, b, {"Acc": 0.5})
    data = bf.zip_bytes(
        {
            "challenge_config.yaml": yaml.safe_dump(
                config(main={"is_leaderboard_order_descending": False})
            ),
            "templates/description.html": "<p>probe</p>",
            "annotations/truth.json": '{"answer": 42}',
            "evaluation_script.zip": bf.zip_bytes({"__init__.py": GOOD_EVALUATE}),
        }
    )
    challenge_load_bundle(
        source=io.BytesIO(data),
        user=users["alice"],
        host_team=host_teams["alice"],
        challenge=challenge,
    )
    assert (
        ChallengePhaseSplit.objects.get(
            phase__challenge=challenge, dataset_split__codename="main"
        ).is_leaderboard_order_descending
        is False
    )
    assert teams_of(api(None).get(board_url(challenge))) == ["B", "A"]
    assert LeaderboardEntry.objects.filter(team=a).exists()


def _snapshot(challenge) -> set[tuple]:
    return set(
        LeaderboardEntry.objects.filter(phase_split__phase__challenge=challenge).values_list(
            "phase_split_id", "team_id", "scope", "label", "submission_id", "value", "is_baseline"
        )
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"main": {"show_leaderboard_by_latest_submission": True}},
        {"phase": {"max_final_submissions": 2}},
    ],
    ids=["best", "latest", "final-cap"],
)
def test_merging_each_new_result_gives_what_a_full_rebuild_gives(
    users, host_teams, django_user_model, options
):
    """The hot path (merge one result into the team's entries) against the reference
    (derive every entry from every result), over a random history with ties, missing
    labels, private submissions, baselines and final picks."""
    import random

    from challenges.services.leaderboard_refresh import leaderboard_rebuild
    from challenges.services.submission_choices import submission_set_final

    rng = random.Random(4)
    challenge = load(users, host_teams["alice"], **options)
    teams = [team(django_user_model, challenge, f"T{i}") for i in range(4)]

    def scores():
        return {
            label: rng.choice([0.1, 0.5, 0.9, rng.random()])
            for label in ("Acc", "Err", "F1")
            if rng.random() < 0.85
        }

    for _ in range(60):
        t = rng.choice(teams)
        submission = submit_row(challenge, t, is_public=rng.random() < 0.7)
        if rng.random() < 0.1:
            Submission.objects.filter(pk=submission.pk).update(is_baseline=True)
        finish(submission, {"main": scores(), "hidden": scores()})
        capped = challenge.phases.get().max_final_submissions
        picked = Submission.objects.filter(team=t, is_final=True).count()
        if capped and picked < capped and rng.random() < 0.15:
            fresh = Submission.objects.select_related("phase", "team").get(pk=submission.pk)
            submission_set_final(submission=fresh, user=t.created_by, is_final=True)
    merged = _snapshot(challenge)
    leaderboard_rebuild(phase=challenge.phases.get())
    assert merged == _snapshot(challenge)
    assert len(merged) > 50


def test_a_phase_rescore_empties_the_board_until_the_new_results(api, challenge, make_team, users):
    from challenges.services.submissions import phase_rescore

    a, b = make_team("A"), make_team("B")
    first = scored(challenge, a, {"Acc": 0.9})
    scored(challenge, b, {"Acc": 0.5})
    assert phase_rescore(phase=challenge.phases.get(), user=users["alice"]) == 2
    assert teams_of(api(None).get(board_url(challenge))) == []
    Submission.objects.filter(pk=first.pk).update(status="queued")
    finish(Submission.objects.get(pk=first.pk), {"main": {"Acc": 0.2}, "hidden": {"Acc": 0.2}})
    assert [r["scores"][0] for r in api(None).get(board_url(challenge)).json()["rows"]] == [0.2]


def test_rebuild_leaderboards_derives_entries_for_results_from_before_them(
    api, challenge, make_team
):
    import io

    from django.core.management import call_command

    scored(challenge, make_team("A"), {"Acc": 0.4})
    scored(challenge, make_team("B"), {"Acc": 0.6})
    LeaderboardEntry.objects.all().delete()  # as after upgrading an older database
    assert teams_of(api(None).get(board_url(challenge))) == []
    out = io.StringIO()
    call_command("rebuild_leaderboards", "--challenge", str(challenge.pk), stdout=out)
    assert "1 phase(s)" in out.getvalue()
    assert teams_of(api(None).get(board_url(challenge))) == ["B", "A"]
