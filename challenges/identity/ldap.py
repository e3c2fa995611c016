"""LDAP / Active Directory through django-auth-ldap: the library binds as the user and
reads their groups; users are found through ExternalIdentity (as for OpenID Connect)
and their groups go through the same `user_sync_roles`."""

from __future__ import annotations

import logging

from django.contrib import messages
from django_auth_ldap.backend import LDAPBackend as LibraryLDAPBackend

from challenges.identity.accounts import IdentityRefused, user_for_identity
from challenges.identity.roles import user_sync_roles
from challenges.models import ExternalIdentity

log = logging.getLogger(__name__)


def _first(attrs, name: str) -> str:
    values = (attrs or {}).get(name) or [""]
    return str(values[0])


class LDAPBackend(LibraryLDAPBackend):
    def get_or_build_user(self, username, ldap_user):
        """The user this directory account signed in as before, or a new one.

        The library would take any local account with the same username; a stranger
        could then sign up as "alice" before Alice's first sign-in and share her account.
        """
        attr_map = self.settings.USER_ATTR_MAP
        try:
            user = user_for_identity(
                provider=ExternalIdentity.Provider.LDAP,
                subject=username.strip().lower(),
                username=username,
                email=_first(ldap_user.attrs, attr_map.get("email", "mail")),
                first_name=_first(ldap_user.attrs, attr_map.get("first_name", "givenName")),
                last_name=_first(ldap_user.attrs, attr_map.get("last_name", "sn")),
            )
        except IdentityRefused as exc:
            request = getattr(ldap_user, "_request", None)
            if request is not None and hasattr(request, "_messages"):
                messages.error(request, str(exc))
            raise ldap_user.AuthenticationFailed(str(exc)) from None
        return user, False

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        # The library signs in deactivated users too; Django's own backend does not, and
        # the API's token endpoint relies on the backend to refuse them.
        if user is not None and not user.is_active:
            return None
        # Without a group search the directory cannot say who is in which group: the
        # roles are then left alone rather than taken from everyone.
        if user is not None and self.settings.GROUP_SEARCH is not None:
            user_sync_roles(user=user, groups=ldap_user.group_names)
        return user

    def get_user(self, user_id):
        # As for the sign-in above: a deactivated user's session ends here too.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None
