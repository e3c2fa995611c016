"""What an event says, in the language active when asked (the fan-out asks once per
recipient language under translation.override), and who hears of it."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.translation import gettext as _

from challenges.models import (
    Challenge,
    ChallengeParticipation,
    ChallengePhase,
    ChallengePhaseSplit,
    HostTeamMember,
    NotificationEvent,
    ParticipantTeam,
    ParticipantTeamMember,
    Post,
    Submission,
    Thread,
)
from challenges.models.notifications import Kind
from challenges.prepared import Prepared


@dataclass
class Message:
    title: str
    body: str
    url: str  # a path on this site


def user_language(user) -> str:
    """The language the user chose (challenges.models.UserProfile), else the site's.
    A user without a profile row (never chose) raises RelatedObjectDoesNotExist, an
    AttributeError, so getattr's default covers it."""
    profile = getattr(user, "profile", None)
    return getattr(profile, "language", "") or settings.LANGUAGE_CODE


def participant_ids(challenge_id: int) -> set[int]:
    teams = ChallengeParticipation.objects.filter(
        challenge_id=challenge_id, is_banned=False, is_host_team=False
    ).values("team_id")
    return set(
        ParticipantTeamMember.objects.filter(team_id__in=teams).values_list("user_id", flat=True)
    )


def host_ids(challenge_id: int) -> set[int]:
    team = Challenge.objects.filter(pk=challenge_id).values("host_team_id")
    return set(HostTeamMember.objects.filter(team_id__in=team).values_list("user_id", flat=True))


def _can_read_thread(thread: Thread, user_ids: set[int]) -> set[int]:
    """Of `user_ids`, who may read `thread` (the rule of challenges.discussion.access)."""
    from challenges.discussion.access import access_thread

    users = get_user_model().objects.filter(pk__in=user_ids, is_active=True)
    readers = set()
    for user in users:
        try:
            access_thread(user, thread.pk)
        except Thread.DoesNotExist:
            continue
        readers.add(user.pk)
    return readers


def recipients(event: NotificationEvent) -> set[int]:
    """Who hears of `event` (before their preferences). (A submission's team: the fan-out
    reads its users in the same statement, challenges.notifications.fanout.)"""
    p, kind = event.payload, event.kind
    if kind in (Kind.SUBMISSION_FINISHED, Kind.SUBMISSION_FAILED):
        team = Submission.objects.filter(pk=p["submission_id"]).values("team_id")
        return set(
            ParticipantTeamMember.objects.filter(team_id__in=team).values_list("user_id", flat=True)
        )
    if kind == Kind.REPLY:
        thread = Thread.objects.filter(pk=p["thread_id"]).first()
        if thread is None:
            return set()
        followers = set(p.get("follower_ids", []))
        # Someone also named in the post hears of it once, as a mention.
        post = Post.objects.filter(pk=p["post_id"]).first()
        from challenges.discussion.markdown import mentioned_usernames

        named = set(
            get_user_model()
            .objects.filter(username__in=mentioned_usernames(post.body if post else ""))
            .values_list("pk", flat=True)
        )
        return _can_read_thread(thread, followers - {p.get("author_id")} - named)
    if kind == Kind.MENTION:
        thread = Thread.objects.filter(pk=p["thread_id"]).first()
        if thread is None:
            return set()
        return _can_read_thread(thread, set(p.get("user_ids", [])) - {p.get("author_id")})
    if kind == Kind.ANNOUNCEMENT:
        return participant_ids(event.challenge_id) - {p.get("author_id")}
    if kind in (Kind.PHASE_OPENING, Kind.PHASE_CLOSING):
        return participant_ids(event.challenge_id)
    if kind == Kind.CHALLENGE_REVIEW:
        return host_ids(event.challenge_id)
    if kind == Kind.NEW_LEADER:
        # Hosts, and those who follow the challenge by taking part in it.
        return host_ids(event.challenge_id) | participant_ids(event.challenge_id)
    if kind == Kind.DIGEST:
        return {p["user_id"]}
    return set()


# The title of a submission's challenge: every finished submission's message asks.
_CHALLENGE_TITLE = Prepared(
    lambda submission_id: Submission.objects.filter(pk=submission_id).values_list(
        "phase__challenge__title", flat=True
    )[:1],
    int,
)


def compose(
    event: NotificationEvent, user_id: int | None = None, *, challenge_title: str | None = None
) -> Message:
    """The event's message in the active language. `challenge_title`: a submission's
    challenge's, when the caller read it already (the fan-out, with the team)."""
    p, kind = event.payload, event.kind
    if kind in (Kind.SUBMISSION_FINISHED, Kind.SUBMISSION_FAILED):
        # (The challenge's title through the submission: no read of the challenge row.)
        url = reverse("submission", args=[p["submission_id"]])
        title = challenge_title
        if title is None:
            title = next(iter(_CHALLENGE_TITLE(p["submission_id"])), "")
        if kind == Kind.SUBMISSION_FINISHED:
            head = _("Your submission %(id)s to %(challenge)s finished") % {
                "id": p["submission_id"],
                "challenge": title,
            }
        else:
            head = _("Your submission %(id)s to %(challenge)s failed") % {
                "id": p["submission_id"],
                "challenge": title,
            }
        return Message(head, head + ".", url)
    title = (
        Challenge.objects.filter(pk=event.challenge_id).values_list("title", flat=True).first()
        or ""
    )
    if kind in (Kind.REPLY, Kind.MENTION, Kind.ANNOUNCEMENT):
        thread = Thread.objects.filter(pk=p["thread_id"]).first()
        post = Post.objects.select_related("author").filter(pk=p["post_id"]).first()
        author = post.author.get_username() if post and post.author else ""
        url = reverse("forum-thread", args=[event.challenge_id, p["thread_id"]])
        url += f"#post-{p['post_id']}"
        names = {"author": author, "thread": thread.title if thread else "", "challenge": title}
        if kind == Kind.REPLY:
            head = _("%(author)s replied in “%(thread)s” (%(challenge)s)") % names
        elif kind == Kind.MENTION:
            head = _("%(author)s mentioned you in “%(thread)s” (%(challenge)s)") % names
        else:
            head = _("Announcement in %(challenge)s: %(thread)s") % names
        text = post.body if post and not post.is_deleted else ""
        return Message(head, f"{head}\n\n{text}", url)
    if kind in (Kind.PHASE_OPENING, Kind.PHASE_CLOSING):
        phase = ChallengePhase.objects.filter(pk=p["phase_id"]).first()
        names = {"phase": phase.name if phase else "", "challenge": title, "at": p.get("at", "")}
        if kind == Kind.PHASE_OPENING:
            head = _("Phase %(phase)s of %(challenge)s opens within 24 hours") % names
        else:
            head = _("Phase %(phase)s of %(challenge)s closes within 24 hours") % names
        return Message(
            head, f"{head} ({names['at']}).", reverse("challenge", args=[event.challenge_id])
        )
    if kind == Kind.CHALLENGE_REVIEW:
        names = {"challenge": title}
        if p.get("approved"):
            head = _("Your challenge %(challenge)s was approved") % names
        else:
            head = _("Your challenge %(challenge)s was rejected") % names
        note = p.get("note") or ""
        return Message(
            head, f"{head}.\n\n{note}".strip(), reverse("host-challenge", args=[event.challenge_id])
        )
    if kind == Kind.NEW_LEADER:
        split = (
            ChallengePhaseSplit.objects.select_related("phase", "dataset_split")
            .filter(pk=p["phase_split_id"])
            .first()
        )
        team = (
            ParticipantTeam.objects.filter(pk=p["team_id"]).values_list("name", flat=True).first()
        )
        names = {"team": team or "", "challenge": title}
        head = _("%(team)s now leads %(challenge)s") % names
        url = (
            reverse(
                "leaderboard",
                args=[event.challenge_id, split.phase.codename, split.dataset_split.codename],
            )
            if split
            else reverse("challenge", args=[event.challenge_id])
        )
        return Message(head, head + ".", url)
    if kind == Kind.DIGEST:
        return _digest(event, user_id)
    return Message(kind, kind, "/")


def _digest(event: NotificationEvent, user_id: int | None) -> Message:
    from challenges.models import Notification

    since = event.payload.get("since")
    rows = Notification.objects.filter(user_id=user_id, created_at__gte=since).exclude(
        kind=Kind.DIGEST
    )
    titles = [n.title for n in rows.order_by("-created_at")[:30]]
    head = _("Your week on evalserver: %(n)d notifications") % {"n": len(titles)}
    body = head + "\n\n" + "\n".join(f"- {t}" for t in titles)
    return Message(head, body, reverse("notifications"))
