"""The language switcher on every page and the language and time zone page. A signed-in
person's choices are saved with their account (challenges.services.profiles); anyone's
are kept in this browser's cookies too."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from challenges.services.profiles import profile_set_language, profile_set_time_zone
from frontend.forms import PreferencesForm
from frontend.middleware import TIME_ZONE_COOKIE, YEAR, remember_preferences
from frontend.views.common import safe_next


@require_POST
def set_language(request):
    """Django's set_language (the cookie, the safe redirect), and the person's profile."""
    response = django_set_language(request)
    user = request.user
    if user.is_authenticated and profile_set_language(
        user=user, language=request.POST.get("language", "")
    ):
        remember_preferences(request, user)
    return response


def preferences(request):
    form = PreferencesForm(
        request.POST or None,
        initial={
            "language": translation.get_language(),
            "time_zone": timezone.get_current_timezone_name(),
        },
    )
    if request.method == "POST" and form.is_valid():
        language, zone = form.cleaned_data["language"], form.cleaned_data["time_zone"]
        if request.user.is_authenticated:
            profile_set_language(user=request.user, language=language)
            profile_set_time_zone(user=request.user, time_zone=zone)
            remember_preferences(request, request.user)
        translation.activate(language)
        messages.success(
            request,
            _("Saved: pages are in %(language)s, times in %(zone)s.")
            % {"language": translation.get_language_info(language)["name_local"], "zone": zone},
        )
        response = redirect(safe_next(request, request.path))
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=YEAR, samesite="Lax")
        response.set_cookie(TIME_ZONE_COOKIE, zone, max_age=YEAR, samesite="Lax")
        return response
    return render(request, "frontend/accounts/preferences.html", {"form": form})
