"""Who a user is at the organisation's identity provider, and the break-glass admin."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ExternalIdentity(models.Model):
    """One account at an identity provider, tied to one user of this site.

    Sign-in finds the user by this row, never by email or username: an account someone
    made here with a colleague's address or name must not become the colleague's when
    the colleague first signs in with the company account (and its password stay known
    to whoever made it)."""

    class Provider(models.TextChoices):
        OIDC = "oidc", _("OpenID Connect")
        LDAP = "ldap", _("LDAP")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities"
    )
    provider = models.CharField(max_length=10, choices=Provider.choices)
    # OIDC: "<issuer> <sub>" (sub is unique per issuer only); LDAP: the login name, lowercased.
    subject = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    last_sign_in = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = _("external identities")
        constraints = [
            models.UniqueConstraint(fields=["provider", "subject"], name="uniq_external_identity")
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.subject} -> {self.user}"


class BreakGlassAdmin(models.Model):
    """The local administrator who may still sign in with a password in SSO-only mode
    (created by `manage.py create_breakglass_admin`), for when the provider is down."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="break_glass"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return str(self.user)
