"""Notification pages: the list (with the header's count), preferences, and the one-click
unsubscribe link from emails."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from challenges.models import Notification
from challenges.models.notifications import Channel, Kind
from challenges.notifications.preferences import (
    preference_set,
    preferences_of,
    unsubscribe_apply,
    unsubscribe_read,
)
from frontend.views.common import int_param


@login_required
def notifications(request):
    rows = Notification.objects.filter(user=request.user)
    if request.method == "POST":
        rows.filter(read_at__isnull=True).update(read_at=timezone.now())
        return redirect("notifications")
    listing = Paginator(rows, 30).get_page(int_param(request.GET.get("page")))
    return render(request, "frontend/notifications/list.html", {"page": listing})


@login_required
def open_notification(request, notification_id: int):
    """Mark one read and go where it points."""
    note = Notification.objects.filter(user=request.user, pk=notification_id).first()
    if note is None:
        return redirect("notifications")
    if note.read_at is None:
        Notification.objects.filter(pk=note.pk).update(read_at=timezone.now())
    return redirect(note.url if note.url.startswith("/") else "notifications")


@login_required
def preferences(request):
    if request.method == "POST":
        for kind in Kind.values:
            for channel in Channel.values:
                preference_set(
                    user=request.user,
                    kind=kind,
                    channel=channel,
                    enabled=f"{kind}:{channel}" in request.POST,
                )
        messages.success(request, _("Your notification settings were saved."))
        return redirect("notification-preferences")
    prefs = preferences_of(request.user)
    rows = [
        {
            "kind": kind,
            "label": label,
            "channels": [(channel, prefs[(kind, channel)]) for channel in Channel.values],
        }
        for kind, label in Kind.choices
    ]
    return render(
        request,
        "frontend/notifications/preferences.html",
        {"rows": rows, "channels": Channel.choices},
    )


# One-click (RFC 8058): a mail client POSTs to the List-Unsubscribe URL without cookies or a
# CSRF token; the signed token in the URL is the authority, and all it can do is turn off
# one kind of email for one user.
@csrf_exempt
def unsubscribe(request, token: str):
    found = unsubscribe_read(token)
    if found is None:
        return render(request, "frontend/notifications/unsubscribe.html", {"bad": True}, status=404)
    kind_label = dict(Kind.choices)[found[1]]
    done = False
    if request.method == "POST":
        unsubscribe_apply(token=token)
        done = True
    return render(
        request,
        "frontend/notifications/unsubscribe.html",
        {"kind": kind_label, "done": done, "token": token},
    )
