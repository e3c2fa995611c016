"""Template context every page gets: the unread notifications count in the header."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject


def unread_notifications(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from challenges.models import Notification

    # Lazy: a page that never shows the header (a download, JSON) pays no query.
    return {
        "unread_notifications": SimpleLazyObject(
            lambda: Notification.objects.filter(user=user, read_at__isnull=True).count()
        )
    }
