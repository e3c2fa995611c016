"""What every page's template may use (settings.TEMPLATES context_processors): the
language and time zone the page is shown in, and the unread notifications count in the
header."""

from __future__ import annotations

from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from frontend.labels import script_texts


def page(request) -> dict:
    return {
        # Called only by templates that render it (base.html), in the active language.
        "script_texts": script_texts,
        "time_zone": timezone.get_current_timezone_name(),
    }


def unread_notifications(request) -> dict:
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
