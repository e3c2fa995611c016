"""Each request's language and time zone: a signed-in person's saved choices, else the
browser's (LocaleMiddleware reads Accept-Language and the switcher's cookie; app.js sets
the time zone cookie from Intl), else the site's (LANGUAGE_CODE, TIME_ZONE)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation

from challenges.services.profiles import (
    profile_preferences,
    profile_set_time_zone,
    valid_language,
    valid_time_zone,
)

# Set by frontend/static/frontend/app.js from Intl.DateTimeFormat().resolvedOptions().
TIME_ZONE_COOKIE = "evalserver_tz"
# The session keeps the saved choices so that pages cost no extra query: loaded at
# sign-in (frontend.apps) and updated when the person changes them.
SESSION_KEY = "evalserver_preferences"
YEAR = 365 * 24 * 3600


def remember_preferences(request: HttpRequest, user) -> None:
    """Copy `user`'s saved choices into the session (at sign-in, and after a change)."""
    if hasattr(request, "session"):
        request.session[SESSION_KEY] = profile_preferences(user=user)


class PreferencesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        saved = self._saved(request)
        language = valid_language(saved.get("language"))
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        browser_zone = valid_time_zone(request.COOKIES.get(TIME_ZONE_COOKIE))
        if browser_zone and not saved.get("time_zone") and request.user.is_authenticated:
            # The first visit of a signed-in person whose zone is not saved yet: the
            # browser's guess becomes theirs, changeable on the preferences page. Either
            # way the session learns the saved zone, so this runs once per session.
            profile_set_time_zone(user=request.user, time_zone=browser_zone, only_if_unset=True)
            remember_preferences(request, request.user)
            saved = request.session[SESSION_KEY]
        zone = valid_time_zone(saved.get("time_zone")) or browser_zone or settings.TIME_ZONE
        if request.path.startswith("/api/"):
            # The API speaks UTC ISO 8601 whoever asks: scripts compare and store its
            # times, and a reader's zone must not change what they get.
            timezone.activate(dt.UTC)
        else:
            timezone.activate(zoneinfo.ZoneInfo(zone))
        response = self.get_response(request)
        if (
            language
            and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language
            # The switcher answering this very request sets the new choice itself.
            and settings.LANGUAGE_COOKIE_NAME not in response.cookies
        ):
            # So the pages stay in this language after signing out, on this browser.
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME, language, max_age=YEAR, samesite="Lax"
            )
        return response

    @staticmethod
    def _saved(request: HttpRequest) -> dict[str, str]:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return {}
        saved = request.session.get(SESSION_KEY)
        if not isinstance(saved, dict):
            # A session from before sign-in loaded the choices (or an older release).
            remember_preferences(request, user)
            saved = request.session[SESSION_KEY]
        return saved
