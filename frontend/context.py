"""What every page's template may use (settings.TEMPLATES context_processors)."""

from __future__ import annotations

from django.utils import timezone

from frontend.labels import script_texts


def page(request) -> dict:
    return {
        # Called only by templates that render it (base.html), in the active language.
        "script_texts": script_texts,
        "time_zone": timezone.get_current_timezone_name(),
    }
