"""What a person chose for themselves: the language and time zone pages use."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class UserProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    # Blank: not chosen; the browser's Accept-Language decides. No `choices`: the site's
    # LANGUAGES may grow without a migration (challenges.services.profiles checks values).
    language = models.CharField(max_length=16, blank=True)
    # An IANA name (Asia/Tokyo). Blank until the browser tells it on a first visit.
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.language or '-'}, {self.time_zone or '-'})"
