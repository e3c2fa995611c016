"""Local passwords: Django's own check, off in SSO-only mode for all but the break-glass
admin (the site's sign-in form, the admin's, and the API's token endpoint all come here)."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from challenges.identity.accounts import user_may_use_password


class LocalPasswordBackend(ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and user_may_use_password(user)
