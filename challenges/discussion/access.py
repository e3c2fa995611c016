"""Who may read and write a challenge's forum. Reading follows who can see the challenge
(a challenge only its hosts see has a forum only they see); writing is for those who
take part: hosts (and admins) and members of a team that accepted the terms and is not
banned. Views and services both ask here."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import gettext as _

from challenges.access import (
    AccessDenied,
    access_challenge,
    require_team_member,
    user_is_challenge_host,
)
from challenges.models import Challenge, ChallengeParticipation, Post, Submission, Thread
from challenges.selectors import participation_for_user


@dataclass
class Forum:
    """A challenge's forum as one reader meets it."""

    challenge: Challenge
    user: AbstractBaseUser | AnonymousUser
    is_host: bool
    participation: ChallengeParticipation | None

    @property
    def can_write(self) -> bool:
        if not self.user.is_authenticated:
            return False
        if self.is_host:
            return True
        return self.participation is not None and not self.participation.is_banned

    def require_write(self) -> None:
        if not self.user.is_authenticated:
            raise AccessDenied(_("Sign in to write in the forum."))
        if not self.can_write:
            if self.participation is not None:
                raise AccessDenied(_("Your team is banned from this challenge."))
            raise AccessDenied(
                _(
                    "Only teams that take part in this challenge can write in its forum: "
                    "join a team and accept the terms first."
                )
            )

    def require_reply(self, thread: Thread) -> None:
        """Writers reply; in a locked thread, only the hosts."""
        self.require_write()
        if thread.is_locked and not self.is_host:
            raise AccessDenied(_("This thread is locked: only the hosts can reply."))

    def require_host(self, action: str) -> None:
        if not self.is_host:
            raise AccessDenied(_("Only the challenge's hosts can %(action)s.") % {"action": action})


def access_forum(user: AbstractBaseUser | AnonymousUser, challenge_id: int) -> Forum:
    """The forum of a challenge `user` may see; Challenge.DoesNotExist otherwise."""
    challenge = access_challenge(user, challenge_id)
    is_host = user_is_challenge_host(user, challenge)
    participation = None if is_host else participation_for_user(user, challenge, related=False)
    return Forum(challenge, user, is_host, participation)


def access_thread(user: AbstractBaseUser | AnonymousUser, thread_id: int) -> tuple[Thread, Forum]:
    """A thread `user` may read, with its forum; Thread.DoesNotExist otherwise (a hidden
    thread is not there for anyone but the hosts)."""
    thread = Thread.objects.select_related("author").get(pk=thread_id)
    try:
        forum = access_forum(user, thread.challenge_id)
    except Challenge.DoesNotExist:
        raise Thread.DoesNotExist from None
    if thread.is_hidden and not forum.is_host:
        raise Thread.DoesNotExist
    thread.challenge = forum.challenge
    return thread, forum


def access_post(user: AbstractBaseUser | AnonymousUser, post_id: int) -> tuple[Post, Forum]:
    """A post `user` may read (in a thread they may read); Post.DoesNotExist otherwise."""
    post = Post.objects.select_related("author").get(pk=post_id)
    try:
        thread, forum = access_thread(user, post.thread_id)
    except Thread.DoesNotExist:
        raise Post.DoesNotExist from None
    if post.is_hidden and not forum.is_host and post.author_id != getattr(user, "pk", None):
        raise Post.DoesNotExist
    post.thread = thread
    return post, forum


def post_text_shown(forum: Forum, post: Post) -> bool:
    """Whether the reader sees a post's text: not once deleted; when hidden, only the hosts
    and its author (others see that it was hidden, and why)."""
    if post.is_deleted:
        return False
    if not post.is_hidden:
        return True
    return forum.is_host or post.author_id == getattr(forum.user, "pk", None)


def require_post_author(user: AbstractBaseUser | AnonymousUser, post: Post) -> None:
    """Only a post's author edits or deletes it (hosts hide, they do not rewrite)."""
    if not user.is_authenticated or post.author_id != user.pk:
        raise AccessDenied(_("Only the author of a post can change or delete it."))
    if post.is_deleted:
        raise AccessDenied(_("This post was deleted."))


def access_writeup_submission(
    user: AbstractBaseUser | AnonymousUser, submission_id: int
) -> tuple[Submission, Forum]:
    """A submission its team may write up, with the forum the write-up goes to: the team's
    own (others get DoesNotExist, hosts AccessDenied: a write-up is the team's word)."""
    from challenges.submission_access import access_submission

    submission = access_submission(user, submission_id).submission
    require_team_member(
        user, submission.team, _("Only members of the submitting team can write it up.")
    )
    return submission, access_forum(user, submission.phase.challenge_id)
