"""REST API: a challenge's forum (threads, replies, announcements, moderation) and
solution write-ups. Access is decided in challenges.discussion.access; writes go through
challenges.discussion.services and are throttled per user (THROTTLE_FORUM_USER)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

import evalserver.converters  # noqa: F401  (registers <id:>)
from challenges.discussion.access import (
    Forum,
    access_forum,
    access_post,
    access_thread,
    access_writeup_submission,
    post_text_shown,
    require_post_author,
)
from challenges.discussion.markdown import render_markdown
from challenges.discussion.selectors import posts_of_thread, threads_for_forum
from challenges.discussion.services import (
    announcement_create,
    post_create,
    post_delete,
    post_edit,
    post_moderate,
    thread_create,
    thread_moderate,
    writeup_create,
)
from challenges.models import Post, Thread
from challenges.throttles import PerUser, throttle


class ForumWrites:
    """Reads are free; every write counts against the user's forum rate."""

    def get_throttles(self):
        if self.request.method in permissions.SAFE_METHODS:
            return []
        return [throttle("forum_user", PerUser)()]


class ThreadOut(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()
    replies = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Thread
        fields = [
            "id",
            "challenge",
            "kind",
            "title",
            "author",
            "created_at",
            "last_post_at",
            "is_pinned",
            "is_locked",
            "is_hidden",
            "hidden_reason",
            "submission",
            "code_url",
            "replies",
        ]

    def get_author(self, thread) -> str:
        return thread.author.get_username() if thread.author else ""


class PostOut(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField()
    body = serializers.CharField()
    html = serializers.CharField()
    quotes = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    is_deleted = serializers.BooleanField()
    is_hidden = serializers.BooleanField()
    hidden_reason = serializers.CharField()


def post_out(post: Post, forum: Forum) -> dict:
    """A post as `forum`'s reader may see it: a hidden post's text only for hosts and its
    author, a deleted one's for nobody."""
    body = post.body if post_text_shown(forum, post) else ""
    return {
        "id": post.pk,
        "author": post.author.get_username() if post.author else "",
        "body": body,
        "html": render_markdown(body) if body else "",
        "quotes": post.quotes_id,
        "created_at": post.created_at,
        "edited_at": post.edited_at,
        "is_deleted": post.is_deleted,
        "is_hidden": post.is_hidden,
        "hidden_reason": post.hidden_reason,
    }


class ThreadIn(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=20_000)


class PostIn(serializers.Serializer):
    body = serializers.CharField(max_length=20_000)
    quotes = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class PostEditIn(serializers.Serializer):
    body = serializers.CharField(max_length=20_000)


class ModerateIn(serializers.Serializer):
    pinned = serializers.BooleanField(required=False, allow_null=True, default=None)
    locked = serializers.BooleanField(required=False, allow_null=True, default=None)
    hidden = serializers.BooleanField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class HideIn(serializers.Serializer):
    hidden = serializers.BooleanField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class WriteUpIn(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=20_000)
    code_url = serializers.URLField(required=False, allow_blank=True, max_length=1000, default="")


class ThreadDetailOut(serializers.Serializer):
    thread = ThreadOut()
    count = serializers.IntegerField()
    posts = PostOut(many=True)


SEARCH = OpenApiParameter("search", str, description="words in titles and posts")
KIND = OpenApiParameter("kind", str, enum=Thread.Kind.values)


class ForumThreads(ForumWrites, APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(parameters=[SEARCH, KIND], responses=ThreadOut(many=True))
    def get(self, request, challenge_id: int):
        """The forum's threads, pinned first, then by the latest post (paginated)."""
        forum = access_forum(request.user, challenge_id)
        kind = request.query_params.get("kind", "")
        if kind not in Thread.Kind.values:
            kind = ""
        threads = threads_for_forum(forum, search=request.query_params.get("search", ""), kind=kind)
        pages = LimitOffsetPagination()
        page = pages.paginate_queryset(threads, request, view=self)
        return pages.get_paginated_response(ThreadOut(page, many=True).data)

    @extend_schema(request=ThreadIn, responses={201: ThreadOut})
    def post(self, request, challenge_id: int):
        """Start a thread (teams taking part and hosts)."""
        forum = access_forum(request.user, challenge_id)
        forum.require_write()
        params = ThreadIn(data=request.data)
        params.is_valid(raise_exception=True)
        thread = thread_create(forum=forum, **params.validated_data)
        return Response(ThreadOut(thread).data, status=status.HTTP_201_CREATED)


class ForumAnnouncements(ForumWrites, APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=ThreadIn, responses={201: ThreadOut})
    def post(self, request, challenge_id: int):
        """Hosts: post an announcement; every participant is notified."""
        forum = access_forum(request.user, challenge_id)
        forum.require_host("post announcements")
        params = ThreadIn(data=request.data)
        params.is_valid(raise_exception=True)
        thread = announcement_create(forum=forum, **params.validated_data)
        return Response(ThreadOut(thread).data, status=status.HTTP_201_CREATED)


class ForumThread(ForumWrites, APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses=ThreadDetailOut)
    def get(self, request, thread_id: int):
        """A thread and its posts, oldest first (paginated with limit and offset)."""
        thread, forum = access_thread(request.user, thread_id)
        pages = LimitOffsetPagination()
        posts = pages.paginate_queryset(posts_of_thread(thread, forum), request, view=self)
        return Response(
            {
                "thread": ThreadOut(thread).data,
                "count": pages.count,
                "posts": [post_out(p, forum) for p in posts],
            }
        )

    @extend_schema(request=ModerateIn, responses=ThreadOut)
    def patch(self, request, thread_id: int):
        """Hosts: pin, lock or hide the thread (hiding needs a reason, kept in the audit log)."""
        thread, forum = access_thread(request.user, thread_id)
        forum.require_host("moderate the forum")
        params = ModerateIn(data=request.data)
        params.is_valid(raise_exception=True)
        thread = thread_moderate(forum=forum, thread=thread, **params.validated_data)
        return Response(ThreadOut(thread).data)


class ForumThreadPosts(ForumWrites, APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=PostIn, responses={201: PostOut})
    def post(self, request, thread_id: int):
        """Reply; `quotes` names a post of the thread to quote."""
        thread, forum = access_thread(request.user, thread_id)
        forum.require_write()
        params = PostIn(data=request.data)
        params.is_valid(raise_exception=True)
        quotes = None
        if params.validated_data.get("quotes"):
            quotes = Post.objects.select_related("author").get(
                pk=params.validated_data["quotes"], thread=thread
            )
        post = post_create(
            forum=forum, thread=thread, body=params.validated_data["body"], quotes=quotes
        )
        return Response(post_out(post, forum), status=status.HTTP_201_CREATED)


class ForumPost(ForumWrites, APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=PostEditIn, responses=PostOut)
    def patch(self, request, post_id: int):
        """The author edits their post."""
        post, forum = access_post(request.user, post_id)
        require_post_author(request.user, post)
        params = PostEditIn(data=request.data)
        params.is_valid(raise_exception=True)
        post = post_edit(user=request.user, post=post, body=params.validated_data["body"])
        return Response(post_out(post, forum))

    @extend_schema(responses={204: None})
    def delete(self, request, post_id: int):
        """The author deletes their post (its place in the thread stays)."""
        post, forum = access_post(request.user, post_id)
        post_delete(user=request.user, post=post)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ForumPostHide(ForumWrites, APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=HideIn, responses=PostOut)
    def post(self, request, post_id: int):
        """Hosts: hide or show a post (hiding needs a reason, kept in the audit log)."""
        post, forum = access_post(request.user, post_id)
        forum.require_host("moderate the forum")
        params = HideIn(data=request.data)
        params.is_valid(raise_exception=True)
        post = post_moderate(forum=forum, post=post, **params.validated_data)
        return Response(post_out(post, forum))


class SubmissionWriteUp(ForumWrites, APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=WriteUpIn, responses={201: ThreadOut})
    def post(self, request, submission_id: int):
        """The submitting team: attach a solution write-up to its final submission once the
        phase has ended."""
        submission, forum = access_writeup_submission(request.user, submission_id)
        params = WriteUpIn(data=request.data)
        params.is_valid(raise_exception=True)
        thread = writeup_create(forum=forum, submission=submission, **params.validated_data)
        return Response(ThreadOut(thread).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path(
        "challenges/<id:challenge_id>/forum/threads/",
        ForumThreads.as_view(),
        name="api-forum-threads",
    ),
    path(
        "challenges/<id:challenge_id>/forum/announcements/",
        ForumAnnouncements.as_view(),
        name="api-forum-announcements",
    ),
    path("forum/threads/<id:thread_id>/", ForumThread.as_view(), name="api-forum-thread"),
    path(
        "forum/threads/<id:thread_id>/posts/",
        ForumThreadPosts.as_view(),
        name="api-forum-thread-posts",
    ),
    path("forum/posts/<id:post_id>/", ForumPost.as_view(), name="api-forum-post"),
    path("forum/posts/<id:post_id>/hide/", ForumPostHide.as_view(), name="api-forum-post-hide"),
    path(
        "submissions/<id:submission_id>/writeup/",
        SubmissionWriteUp.as_view(),
        name="api-submission-writeup",
    ),
]
