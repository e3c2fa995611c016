"""Participant teams and participation in challenges: every rule, and who may do what.

The cast of tests/conftest.py, with dave and erin added here:

- charlie: member of "Eagles", the team under test (not yet taking part unless a test enters it)
- dave: member of "Ducks", which takes part in Alice's challenge (a participant of another team)
- erin: an outsider without a team; alice hosts the challenge; bob hosts another one;
  admin is staff and in no team.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.utils import timezone

from challenges.access import AccessDenied, user_is_team_member
from challenges.models import Challenge, ChallengeParticipation, ParticipantTeam
from challenges.selectors import participation_for_user, teams_of_user
from challenges.services.bundles import challenge_load_bundle
from challenges.services.challenges import challenge_approve
from challenges.services.participation import (
    ParticipationError,
    challenge_participate,
    domain_matches,
    participant_team_create,
    participant_team_join,
    participant_team_leave,
    participant_team_rotate_code,
)
from challenges.services.teams import host_team_add_member
from tests.conftest import require_service

pytestmark = pytest.mark.django_db

# Most tests build their challenge with the ORM (approved and published, as an admin
# leaves it) so that each rule can be bent one field at a time; one test goes through
# a real starter bundle.


def make_challenge(host_team, creator, **fields) -> Challenge:
    defaults = {
        "title": f"{host_team.name} challenge",
        "end_date": timezone.now() + timedelta(days=30),
        "approved_by_admin": True,
        "review": Challenge.Review.APPROVED,
        "published": True,
    }
    return Challenge.objects.create(
        host_team=host_team, created_by=creator, **{**defaults, **fields}
    )


@pytest.fixture
def cast(users, django_user_model):
    make = django_user_model.objects.create_user
    users["dave"] = make("dave", "dave@example.org", "pw-dave-123")
    users["erin"] = make("erin", "erin@example.org", "pw-erin-123")
    return users


@pytest.fixture
def challenge(cast, host_teams):
    return make_challenge(host_teams["alice"], cast["alice"], title="Tabular Classification")


@pytest.fixture
def bobs_challenge(cast, host_teams):
    return make_challenge(host_teams["bob"], cast["bob"], title="Bob's Regression")


@pytest.fixture
def ducks(cast, challenge):
    team = participant_team_create(name="Ducks", creator=cast["dave"])
    challenge_participate(challenge=challenge, team=team, user=cast["dave"], accept_terms=True)
    return team


@pytest.fixture
def eagles(cast):
    return participant_team_create(name="Eagles", creator=cast["charlie"])


@pytest.fixture
def world(cast, challenge, bobs_challenge, ducks, eagles):
    return {"challenge": challenge, "ducks": ducks, "eagles": eagles}


def participate(client, challenge, team, accept_terms=True):
    return client.post(
        f"/api/v1/challenges/{challenge.pk}/participate/",
        {"team": team.pk, "accept_terms": accept_terms},
        format="json",
    )


def enter(challenge, team, user):
    return challenge_participate(challenge=challenge, team=team, user=user, accept_terms=True)


def refused(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.content
    assert fragment in response.json()["detail"], response.json()


# Creating teams


def test_a_user_creates_a_team_and_becomes_its_only_member(api, cast):
    response = api("erin").post("/api/v1/teams/", {"name": "Crows"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Crows" and body["members"] == ["erin"]
    assert body["created_by"] == "erin" and body["challenges"] == []
    team = ParticipantTeam.objects.get(pk=body["id"])
    assert body["invitation_code"] == team.invitation_code
    assert list(team.members.all()) == [cast["erin"]]


def test_team_names_are_unique_ignoring_case(api, eagles):
    response = api("erin").post("/api/v1/teams/", {"name": "eagles"}, format="json")
    refused(response, 400, "A team named 'eagles' exists already: choose another name.")
    assert ParticipantTeam.objects.filter(name__iexact="eagles").count() == 1


def test_a_blank_team_name_is_refused(api, cast):
    response = api("erin").post("/api/v1/teams/", {"name": "   "}, format="json")
    assert response.status_code == 400
    assert "blank" in response.json()["name"][0]
    with pytest.raises(ParticipationError, match="needs a name"):
        participant_team_create(name="  ", creator=cast["erin"])


def test_the_team_list_shows_only_my_teams_with_codes_and_members(api, world, cast):
    participant_team_join(user=cast["erin"], invitation_code=world["eagles"].invitation_code)
    body = api("erin").get("/api/v1/teams/").json()
    assert [t["name"] for t in body] == ["Eagles"]
    assert body[0]["members"] == ["charlie", "erin"]
    assert body[0]["invitation_code"] == world["eagles"].invitation_code
    assert api("dave").get("/api/v1/teams/").json()[0]["challenges"] == [world["challenge"].pk]


def test_listing_teams_takes_a_fixed_number_of_queries(api, cast, django_assert_max_num_queries):
    client = api("erin")
    for n in range(5):
        team = participant_team_create(name=f"Team {n}", creator=cast["erin"])
        participant_team_join(
            user=cast[("dave", "charlie")[n % 2]], invitation_code=team.invitation_code
        )
    # Token lookup, teams, members, participations: the same for 5 teams as for 500.
    with django_assert_max_num_queries(4):
        response = client.get("/api/v1/teams/")
    assert len(response.json()) == 5


# Joining, rotating the code, leaving


def test_a_user_joins_a_team_with_its_invitation_code(api, eagles, cast):
    response = api("erin").post(
        "/api/v1/teams/join/", {"invitation_code": eagles.invitation_code}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["members"] == ["charlie", "erin"]
    assert user_is_team_member(cast["erin"], eagles)


def test_joining_a_team_twice_is_harmless(api, eagles):
    for _ in range(2):
        response = api("charlie").post(
            "/api/v1/teams/join/", {"invitation_code": eagles.invitation_code}, format="json"
        )
        assert response.status_code == 200
    assert eagles.memberships.count() == 1


def test_an_unknown_invitation_code_is_refused(api, eagles):
    response = api("erin").post(
        "/api/v1/teams/join/", {"invitation_code": "not-a-code"}, format="json"
    )
    refused(response, 400, "No team has this invitation code")


def test_joining_is_refused_when_the_team_would_exceed_a_challenges_member_limit(api, world, cast):
    Challenge.objects.filter(pk=world["challenge"].pk).update(max_team_members=1)
    response = api("erin").post(
        "/api/v1/teams/join/", {"invitation_code": world["ducks"].invitation_code}, format="json"
    )
    refused(
        response,
        400,
        "takes part in 'Tabular Classification', which allows at most 1 members per team",
    )
    assert not user_is_team_member(cast["erin"], world["ducks"])


def test_a_user_is_in_one_team_per_challenge_when_joining(api, world, cast):
    enter(world["challenge"], world["eagles"], cast["charlie"])
    response = api("dave").post(
        "/api/v1/teams/join/", {"invitation_code": world["eagles"].invitation_code}, format="json"
    )
    refused(
        response,
        400,
        "You are already in the team 'Ducks', which takes part in 'Tabular Classification': "
        "a user can be in only one team per challenge.",
    )


def test_a_host_cannot_join_a_team_taking_part_in_their_challenge(api, world):
    response = api("alice").post(
        "/api/v1/teams/join/", {"invitation_code": world["ducks"].invitation_code}, format="json"
    )
    refused(response, 400, "You are a host of 'Tabular Classification'")


def test_joining_is_refused_when_the_email_is_outside_a_challenges_allowed_domains(
    api, world, cast
):
    Challenge.objects.filter(pk=world["challenge"].pk).update(allowed_email_domains=["example.org"])
    cast["erin"].email = "erin@gmail.com"
    cast["erin"].save()
    response = api("erin").post(
        "/api/v1/teams/join/", {"invitation_code": world["ducks"].invitation_code}, format="json"
    )
    refused(response, 400, "open only to email addresses at example.org")


def test_ended_challenges_no_longer_constrain_who_joins(api, world, cast):
    Challenge.objects.filter(pk=world["challenge"].pk).update(
        max_team_members=1, end_date=timezone.now() - timedelta(days=1)
    )
    response = api("erin").post(
        "/api/v1/teams/join/", {"invitation_code": world["ducks"].invitation_code}, format="json"
    )
    assert response.status_code == 200, response.content


def test_a_member_rotates_the_code_and_the_old_one_stops_working(api, eagles):
    old = eagles.invitation_code
    response = api("charlie").post(f"/api/v1/teams/{eagles.pk}/rotate-code/")
    assert response.status_code == 200, response.content
    new = response.json()["invitation_code"]
    assert new != old
    eagles.refresh_from_db()
    assert eagles.invitation_code == new
    late = api("erin").post("/api/v1/teams/join/", {"invitation_code": old}, format="json")
    refused(late, 400, "No team has this invitation code")
    joined = api("erin").post("/api/v1/teams/join/", {"invitation_code": new}, format="json")
    assert joined.status_code == 200


def test_only_members_rotate_the_code(cast, eagles):
    with pytest.raises(AccessDenied, match="only its members can change its invitation code"):
        participant_team_rotate_code(team=eagles, user=cast["erin"])


def test_a_member_leaves_a_team_and_an_empty_team_is_deleted(api, eagles, cast):
    participant_team_join(user=cast["erin"], invitation_code=eagles.invitation_code)
    assert api("erin").post(f"/api/v1/teams/{eagles.pk}/leave/").status_code == 204
    assert not user_is_team_member(cast["erin"], eagles)
    assert api("charlie").post(f"/api/v1/teams/{eagles.pk}/leave/").status_code == 204
    assert not ParticipantTeam.objects.filter(pk=eagles.pk).exists()


def test_members_cannot_leave_a_team_taking_part_in_a_running_challenge(api, world):
    response = api("dave").post(f"/api/v1/teams/{world['ducks'].pk}/leave/")
    refused(response, 400, "its members cannot leave until the challenge ends")


def test_a_team_that_took_part_in_an_ended_challenge_is_kept_when_its_last_member_leaves(
    world, cast
):
    Challenge.objects.filter(pk=world["challenge"].pk).update(
        end_date=timezone.now() - timedelta(days=1)
    )
    participant_team_leave(team=world["ducks"], user=cast["dave"])
    assert ParticipantTeam.objects.filter(pk=world["ducks"].pk).exists()
    assert world["ducks"].participations.count() == 1


# Participating


def test_a_member_enters_their_team_after_accepting_the_terms(api, world, cast):
    response = participate(api("charlie"), world["challenge"], world["eagles"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["team"] == {"id": world["eagles"].pk, "name": "Eagles"}
    assert body["challenge"] == world["challenge"].pk and body["accepted_terms_by"] == "charlie"
    assert participation_for_user(cast["charlie"], world["challenge"]).pk == body["id"]


def test_participating_again_is_idempotent(api, world):
    first = participate(api("charlie"), world["challenge"], world["eagles"])
    again = participate(api("charlie"), world["challenge"], world["eagles"])
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert ChallengeParticipation.objects.filter(team=world["eagles"]).count() == 1


def test_a_team_already_taking_part_stays_in_after_registration_closes(api, world):
    Challenge.objects.filter(pk=world["challenge"].pk).update(is_registration_open=False)
    response = participate(api("dave"), world["challenge"], world["ducks"], accept_terms=False)
    assert response.status_code == 200


def test_the_terms_must_be_accepted(api, world):
    response = participate(api("charlie"), world["challenge"], world["eagles"], accept_terms=False)
    refused(response, 400, "you must accept its terms and conditions")
    omitted = api("charlie").post(
        f"/api/v1/challenges/{world['challenge'].pk}/participate/",
        {"team": world["eagles"].pk},
        format="json",
    )
    refused(omitted, 400, "send accept_terms: true")
    assert not ChallengeParticipation.objects.filter(team=world["eagles"]).exists()


def test_only_members_of_a_team_can_enter_it(api, world):
    response = participate(api("erin"), world["challenge"], world["eagles"])
    refused(response, 403, "You are not a member of the team 'Eagles'")


def test_an_unknown_team_is_refused(api, world):
    response = api("charlie").post(
        f"/api/v1/challenges/{world['challenge'].pk}/participate/",
        {"team": 999999, "accept_terms": True},
        format="json",
    )
    refused(response, 400, "There is no participant team with id 999999")


@pytest.mark.parametrize(
    "fields",
    [
        {"published": False},
        {"approved_by_admin": False, "review": Challenge.Review.PENDING},
        {"approved_by_admin": False, "review": Challenge.Review.REJECTED},
    ],
    ids=["unpublished", "pending", "rejected"],
)
def test_challenges_not_approved_and_published_are_not_found(api, world, cast, fields):
    Challenge.objects.filter(pk=world["challenge"].pk).update(**fields)
    response = participate(api("charlie"), world["challenge"], world["eagles"])
    refused(response, 404, "Not found")
    # Even the service, called directly (as by the host's own pages), answers "not found".
    world["challenge"].refresh_from_db()
    with pytest.raises(Challenge.DoesNotExist):
        enter(world["challenge"], world["eagles"], cast["charlie"])


def test_participation_is_refused_while_registration_is_closed(api, world):
    Challenge.objects.filter(pk=world["challenge"].pk).update(is_registration_open=False)
    response = participate(api("charlie"), world["challenge"], world["eagles"])
    refused(response, 400, "Registration for 'Tabular Classification' is closed")


def test_participation_is_refused_after_the_challenge_ended(api, world):
    Challenge.objects.filter(pk=world["challenge"].pk).update(
        end_date=timezone.now() - timedelta(minutes=1)
    )
    response = participate(api("charlie"), world["challenge"], world["eagles"])
    refused(response, 400, "it no longer accepts teams")


def test_hosts_cannot_take_part_in_their_own_challenge(api, world, cast):
    team = participant_team_create(name="Alice's own", creator=cast["alice"])
    response = participate(api("alice"), world["challenge"], team)
    refused(
        response,
        400,
        "You are a host of 'Tabular Classification': hosts cannot take part in their own challenge.",
    )


def test_a_team_with_a_host_of_the_challenge_among_its_members_cannot_take_part(
    api, world, cast, host_teams
):
    participant_team_join(user=cast["erin"], invitation_code=world["eagles"].invitation_code)
    host_team_add_member(team=host_teams["alice"], user=cast["erin"])
    response = participate(api("charlie"), world["challenge"], world["eagles"])
    refused(response, 400, "Team member 'erin' is a host of 'Tabular Classification'")


def test_a_host_of_another_challenge_may_take_part(api, world, cast):
    team = participant_team_create(name="Bob's team", creator=cast["bob"])
    assert participate(api("bob"), world["challenge"], team).status_code == 201


def test_every_member_needs_an_email_in_an_allowed_domain(api, world, cast):
    Challenge.objects.filter(pk=world["challenge"].pk).update(
        allowed_email_domains=["uni.edu", "example.org"]
    )
    participant_team_join(user=cast["erin"], invitation_code=world["eagles"].invitation_code)
    cast["erin"].email = "erin@evilexample.org"
    cast["erin"].save()
    response = participate(api("charlie"), world["challenge"], world["eagles"])
    refused(
        response,
        400,
        "is open only to email addresses at uni.edu, example.org (or their subdomains); "
        "team member 'erin''s address is not.",
    )


def test_subdomains_of_allowed_domains_are_allowed(api, world, cast):
    Challenge.objects.filter(pk=world["challenge"].pk).update(allowed_email_domains=["org"])
    cast["charlie"].email = "Charlie@CS.Example.ORG"
    cast["charlie"].save()
    assert participate(api("charlie"), world["challenge"], world["eagles"]).status_code == 201


def test_a_member_without_an_email_cannot_enter_a_domain_restricted_challenge(api, world, cast):
    Challenge.objects.filter(pk=world["challenge"].pk).update(allowed_email_domains=["example.org"])
    cast["charlie"].email = ""
    cast["charlie"].save()
    response = participate(api("charlie"), world["challenge"], world["eagles"])
    refused(response, 400, "your address is not")


def test_blocked_email_domains_and_their_subdomains_are_refused(api, world, cast):
    Challenge.objects.filter(pk=world["challenge"].pk).update(
        blocked_email_domains=["competitor.com"]
    )
    cast["charlie"].email = "charlie@labs.competitor.com"
    cast["charlie"].save()
    response = participate(api("charlie"), world["challenge"], world["eagles"])
    refused(
        response,
        400,
        "does not accept email addresses at competitor.com (or their subdomains); your address",
    )


@pytest.mark.parametrize(
    ("domain", "rule", "matches"),
    [
        ("example.org", "example.org", True),
        ("cs.example.org", "example.org", True),
        ("CS.Example.Org", "@example.org", True),
        ("evilexample.org", "example.org", False),
        ("example.org.evil.com", "example.org", False),
        ("", "example.org", False),
        ("example.org", "", False),
    ],
)
def test_domain_rules_match_the_domain_or_its_subdomains_only(domain, rule, matches):
    assert domain_matches(domain, rule) is matches


def test_a_member_already_in_another_participating_team_blocks_participation(api, world, cast):
    participant_team_join(user=cast["dave"], invitation_code=world["eagles"].invitation_code)
    response = participate(api("charlie"), world["challenge"], world["eagles"])
    refused(
        response,
        400,
        "Team member 'dave' is already in the team 'Ducks', which takes part in "
        "'Tabular Classification': a user can be in only one team per challenge.",
    )


def test_teams_larger_than_the_member_limit_cannot_take_part(api, world, cast):
    Challenge.objects.filter(pk=world["challenge"].pk).update(max_team_members=1)
    participant_team_join(user=cast["erin"], invitation_code=world["eagles"].invitation_code)
    response = participate(api("charlie"), world["challenge"], world["eagles"])
    refused(
        response,
        400,
        "'Tabular Classification' allows at most 1 members per team; 'Eagles' has 2.",
    )


def test_a_team_at_the_member_limit_may_take_part(api, world):
    Challenge.objects.filter(pk=world["challenge"].pk).update(max_team_members=1)
    assert participate(api("charlie"), world["challenge"], world["eagles"]).status_code == 201


def test_my_participation_is_shown_or_not_found(api, world):
    assert (
        api("charlie").get(f"/api/v1/challenges/{world['challenge'].pk}/participation/").status_code
        == 404
    )
    participate(api("charlie"), world["challenge"], world["eagles"])
    response = api("charlie").get(f"/api/v1/challenges/{world['challenge'].pk}/participation/")
    assert response.status_code == 200
    assert response.json()["team"]["name"] == "Eagles"


def test_a_team_enters_a_challenge_loaded_from_a_starter_bundle(
    api, cast, host_teams, starter_zips
):
    loaded = challenge_load_bundle(
        source=starter_zips["tabular_classification"],
        user=cast["alice"],
        host_team=host_teams["alice"],
    ).challenge
    challenge_approve(challenge=loaded, reviewer=cast["admin"])
    Challenge.objects.filter(pk=loaded.pk).update(published=True)
    team = participant_team_create(name="Starters", creator=cast["erin"])
    response = participate(api("erin"), loaded, team)
    assert response.status_code == 201, response.content
    assert participation_for_user(cast["erin"], loaded).team == team


# Selectors and access functions


def test_participation_for_user_is_the_participation_of_the_users_team(world, cast):
    challenge = world["challenge"]
    assert participation_for_user(cast["dave"], challenge).team == world["ducks"]
    assert participation_for_user(cast["charlie"], challenge) is None
    assert participation_for_user(cast["alice"], challenge) is None
    assert participation_for_user(AnonymousUser(), challenge) is None


def test_teams_of_user_and_membership(world, cast):
    assert list(teams_of_user(cast["dave"])) == [world["ducks"]]
    assert list(teams_of_user(cast["erin"])) == []
    assert list(teams_of_user(AnonymousUser())) == []
    assert user_is_team_member(cast["charlie"], world["eagles"])
    assert not user_is_team_member(cast["dave"], world["eagles"])
    assert not user_is_team_member(cast["admin"], world["eagles"])
    assert not user_is_team_member(AnonymousUser(), world["eagles"])


# Who may do what, by who plays each role (tests/conftest.py): anonymous, erin the outsider,
# dave of another team, charlie of the team (Eagles), bob the other host, alice the host, admin.

PEOPLE = ["anonymous", "erin", "dave", "charlie", "bob", "alice", "admin"]


def client_for(api, role):
    return api(None if role == "anonymous" else role)


@pytest.mark.parametrize(
    ("role", "teams"),
    [
        ("anonymous", None),
        ("erin", []),
        ("dave", ["Ducks"]),
        ("charlie", ["Eagles"]),
        ("bob", []),
        ("alice", []),
        ("admin", []),
    ],
)
def test_access_list_teams(api, world, role, teams):
    response = client_for(api, role).get("/api/v1/teams/")
    if teams is None:
        assert response.status_code == 401
    else:
        assert response.status_code == 200
        assert [t["name"] for t in response.json()] == teams


@pytest.mark.parametrize("role", PEOPLE)
def test_access_create_team(api, world, role):
    response = client_for(api, role).post("/api/v1/teams/", {"name": f"{role} team"}, format="json")
    assert response.status_code == (401 if role == "anonymous" else 201)


@pytest.mark.parametrize(
    ("role", "status", "fragment"),
    [
        ("anonymous", 401, "credentials were not provided"),
        ("erin", 200, None),
        ("dave", 400, "already in the team 'Ducks'"),
        ("charlie", 200, None),
        ("bob", 200, None),
        ("alice", 400, "You are a host of 'Tabular Classification'"),
        ("admin", 200, None),
    ],
)
def test_access_join_a_team_taking_part(api, world, cast, role, status, fragment):
    enter(world["challenge"], world["eagles"], cast["charlie"])
    response = client_for(api, role).post(
        "/api/v1/teams/join/", {"invitation_code": world["eagles"].invitation_code}, format="json"
    )
    assert response.status_code == status, response.content
    if fragment:
        assert fragment in response.json()["detail"]
    else:
        assert role in response.json()["members"]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 401),
        ("erin", 403),
        ("dave", 403),
        ("charlie", 200),
        ("bob", 403),
        ("alice", 403),
        ("admin", 403),
    ],
)
def test_access_rotate_code(api, world, role, status):
    old = world["eagles"].invitation_code
    response = client_for(api, role).post(f"/api/v1/teams/{world['eagles'].pk}/rotate-code/")
    assert response.status_code == status, response.content
    world["eagles"].refresh_from_db()
    assert (world["eagles"].invitation_code != old) is (status == 200)
    if status == 403:
        assert "only its members can change its invitation code" in response.json()["detail"]


def test_rotating_the_code_of_a_missing_team_is_not_found(api, world):
    assert api("charlie").post("/api/v1/teams/999999/rotate-code/").status_code == 404


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 401),
        ("erin", 403),
        ("dave", 403),
        ("charlie", 204),
        ("bob", 403),
        ("alice", 403),
        ("admin", 403),
    ],
)
def test_access_leave_team(api, world, role, status):
    response = client_for(api, role).post(f"/api/v1/teams/{world['eagles'].pk}/leave/")
    assert response.status_code == status, response.content
    if status == 403:
        assert "You are not a member of the team 'Eagles'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 401),
        ("erin", 403),
        ("dave", 403),
        ("charlie", 201),
        ("bob", 403),
        ("alice", 403),
        ("admin", 403),
    ],
)
def test_access_participate(api, world, role, status):
    response = participate(client_for(api, role), world["challenge"], world["eagles"])
    assert response.status_code == status, response.content
    entered = ChallengeParticipation.objects.filter(team=world["eagles"]).exists()
    assert entered is (status == 201)
    if status == 403:
        assert "You are not a member of the team 'Eagles'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 401), *((role, 404) for role in PEOPLE[1:])],
)
def test_access_participate_in_an_unpublished_challenge(api, world, role, status):
    """Not open to anyone yet: not found, for its hosts and admins too."""
    Challenge.objects.filter(pk=world["challenge"].pk).update(published=False)
    response = participate(client_for(api, role), world["challenge"], world["eagles"])
    assert response.status_code == status, response.content
    assert not ChallengeParticipation.objects.filter(team=world["eagles"]).exists()


@pytest.mark.parametrize(
    ("role", "status", "team"),
    [
        ("anonymous", 401, None),
        ("erin", 404, None),
        ("dave", 200, "Ducks"),
        ("charlie", 200, "Eagles"),
        ("bob", 404, None),
        ("alice", 404, None),
        ("admin", 404, None),
    ],
)
def test_access_my_participation(api, world, cast, role, status, team):
    enter(world["challenge"], world["eagles"], cast["charlie"])
    response = client_for(api, role).get(
        f"/api/v1/challenges/{world['challenge'].pk}/participation/"
    )
    assert response.status_code == status, response.content
    if team:
        assert response.json()["team"]["name"] == team


# Races: the rules hold when requests arrive together. Row locks need PostgreSQL
# (SQLite ignores select_for_update), so these skip on SQLite locally and run in CI.


def run_together(n: int, action) -> list[object]:
    """Run action(i) in n threads released at once; each result or the exception raised."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = action(i)
        except Exception as exc:  # the test inspects what each thread got
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_simultaneous_joins_never_exceed_the_member_limit(cast, challenge, django_user_model):
    require_service("postgresql", connection.vendor == "postgresql")
    Challenge.objects.filter(pk=challenge.pk).update(max_team_members=3)
    team = participant_team_create(name="Popular", creator=cast["erin"])
    enter(challenge, team, cast["erin"])
    joiners = [
        django_user_model.objects.create_user(f"joiner{i}", f"joiner{i}@example.org", "pw-x-12345")
        for i in range(8)
    ]
    results = run_together(
        8, lambda i: participant_team_join(user=joiners[i], invitation_code=team.invitation_code)
    )
    joined = [r for r in results if isinstance(r, ParticipantTeam)]
    refusals = [r for r in results if isinstance(r, ParticipationError)]
    assert (len(joined), len(refusals)) == (2, 6), results
    assert team.memberships.count() == 3


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_teams_sharing_a_member_entcharlieg_together_get_one_place(
    cast, challenge, django_user_model
):
    require_service("postgresql", connection.vendor == "postgresql")
    teams = []
    for i in range(6):
        founder = django_user_model.objects.create_user(
            f"founder{i}", f"founder{i}@example.org", "pw-x-12345"
        )
        team = participant_team_create(name=f"Team {i}", creator=founder)
        participant_team_join(user=cast["erin"], invitation_code=team.invitation_code)
        teams.append((team, founder))
    results = run_together(6, lambda i: enter(challenge, teams[i][0], teams[i][1]))
    entered = [r for r in results if isinstance(r, ChallengeParticipation)]
    refusals = [r for r in results if isinstance(r, ParticipationError)]
    assert (len(entered), len(refusals)) == (1, 5), results
    assert all("a user can be in only one team per challenge" in str(r) for r in refusals)
    assert ChallengeParticipation.objects.filter(challenge=challenge).count() == 1
