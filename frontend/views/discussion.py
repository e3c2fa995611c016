"""Forum pages: a challenge's threads (search, pages), a thread with its replies,
editing and deleting one's posts, the hosts' moderation, and solution write-ups."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from challenges.discussion.access import (
    access_forum,
    access_post,
    access_thread,
    access_writeup_submission,
    post_text_shown,
    require_post_author,
)
from challenges.discussion.selectors import posts_of_thread, threads_for_forum
from challenges.discussion.services import (
    ForumRefused,
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
from challenges.throttles import PerUser
from frontend.forms_forum import PostForm, ReasonForm, ThreadForm, WriteUpForm
from frontend.views.common import int_param, page, throttle_page

THREADS_PER_PAGE = 25
POSTS_PER_PAGE = 30
throttled = throttle_page(("forum_user", PerUser))


def _thread_url(thread) -> str:
    return reverse("forum-thread", args=[thread.challenge_id, thread.pk])


@page
@throttled
def forum(request, challenge_id: int):
    forum = access_forum(request.user, challenge_id)
    form = ThreadForm()
    if request.method == "POST":
        forum.require_write()
        form = ThreadForm(request.POST)
        if form.is_valid():
            try:
                if request.POST.get("announcement") and forum.is_host:
                    thread = announcement_create(forum=forum, **form.cleaned_data)
                else:
                    thread = thread_create(forum=forum, **form.cleaned_data)
            except ForumRefused as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(_thread_url(thread))
    search = request.GET.get("q", "")[:200]
    threads = threads_for_forum(forum, search=search)
    listing = Paginator(threads, THREADS_PER_PAGE).get_page(int_param(request.GET.get("page")))
    return render(
        request,
        "frontend/forum/forum.html",
        {"forum": forum, "challenge": forum.challenge, "page": listing, "q": search, "form": form},
        status=400 if form.errors else 200,
    )


@page
@throttled
def thread(request, challenge_id: int, thread_id: int):
    thread, forum = access_thread(request.user, thread_id)
    if thread.challenge_id != challenge_id:
        raise Thread.DoesNotExist
    form = PostForm(initial={"quotes": int_param(request.GET.get("quote"))})
    if request.method == "POST":
        forum.require_write()
        form = PostForm(request.POST)
        if form.is_valid():
            quotes = None
            if form.cleaned_data.get("quotes"):
                quotes = (
                    Post.objects.select_related("author")
                    .filter(pk=form.cleaned_data["quotes"], thread=thread)
                    .first()
                )
            try:
                post = post_create(
                    forum=forum, thread=thread, body=form.cleaned_data["body"], quotes=quotes
                )
            except ForumRefused as exc:
                form.add_error(None, str(exc))
            else:
                count = posts_of_thread(thread, forum).count()
                last = (count - 1) // POSTS_PER_PAGE + 1
                return redirect(f"{_thread_url(thread)}?page={last}#post-{post.pk}")
    posts = Paginator(posts_of_thread(thread, forum), POSTS_PER_PAGE).get_page(
        int_param(request.GET.get("page"))
    )
    for post in posts:
        post.shown = post_text_shown(forum, post)
    quoted = None
    if form.initial.get("quotes"):
        quoted = Post.objects.filter(pk=form.initial["quotes"], thread=thread).first()
    return render(
        request,
        "frontend/forum/thread.html",
        {
            "forum": forum,
            "challenge": forum.challenge,
            "thread": thread,
            "page": posts,
            "form": form,
            "quoted": quoted,
            "reason_form": ReasonForm(),
        },
        status=400 if form.errors else 200,
    )


@login_required
@page
@throttled
def post_change(request, post_id: int):
    post, forum = access_post(request.user, post_id)
    form = PostForm(initial={"body": post.body})
    if request.method == "POST":
        form = PostForm(request.POST)
        if form.is_valid():
            try:
                post_edit(user=request.user, post=post, body=form.cleaned_data["body"])
            except ForumRefused as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(f"{_thread_url(post.thread)}#post-{post.pk}")
    else:
        require_post_author(request.user, post)
    return render(
        request,
        "frontend/forum/post_edit.html",
        {"forum": forum, "challenge": forum.challenge, "post": post, "form": form},
    )


@login_required
@require_POST
@page
@throttled
def post_remove(request, post_id: int):
    post, _forum = access_post(request.user, post_id)
    post_delete(user=request.user, post=post)
    messages.success(request, _("Your post was deleted."))
    return redirect(_thread_url(post.thread))


@login_required
@require_POST
@page
@throttled
def moderate(request, thread_id: int):
    thread, forum = access_thread(request.user, thread_id)
    action = request.POST.get("action", "")
    flags = {
        "pin": {"pinned": True},
        "unpin": {"pinned": False},
        "lock": {"locked": True},
        "unlock": {"locked": False},
        "hide": {"hidden": True},
        "show": {"hidden": False},
    }.get(action)
    if flags is None:
        messages.error(request, _("Unknown moderation action."))
        return redirect(_thread_url(thread))
    try:
        thread_moderate(
            forum=forum, thread=thread, reason=request.POST.get("reason", "")[:500], **flags
        )
    except ForumRefused as exc:
        messages.error(request, str(exc))
    return redirect(_thread_url(thread))


@login_required
@require_POST
@page
@throttled
def post_hide(request, post_id: int):
    post, forum = access_post(request.user, post_id)
    hidden = request.POST.get("action") != "show"
    try:
        post_moderate(
            forum=forum, post=post, hidden=hidden, reason=request.POST.get("reason", "")[:500]
        )
    except ForumRefused as exc:
        messages.error(request, str(exc))
    return redirect(f"{_thread_url(post.thread)}#post-{post.pk}")


@login_required
@page
@throttled
def writeup(request, submission_id: int):
    submission, forum = access_writeup_submission(request.user, submission_id)
    form = WriteUpForm()
    if request.method == "POST":
        form = WriteUpForm(request.POST)
        if form.is_valid():
            try:
                thread = writeup_create(forum=forum, submission=submission, **form.cleaned_data)
            except ForumRefused as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(_thread_url(thread))
    return render(
        request,
        "frontend/forum/writeup.html",
        {"forum": forum, "challenge": forum.challenge, "submission": submission, "form": form},
        status=400 if form.errors else 200,
    )
