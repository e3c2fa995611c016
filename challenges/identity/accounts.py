"""The users that company sign-in creates and finds, and the break-glass admin."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from challenges.models import BreakGlassAdmin, ExternalIdentity
from challenges.services.participation import site_email_refusal

USERNAME_MAX = 150
_NOT_USERNAME = re.compile(r"[^\w.@+-]+")


class IdentityRefused(Exception):
    """The provider vouched for someone this site does not let in; the message says why."""


def username_free(wanted: str) -> str:
    """`wanted` made a valid username that no account has yet (alice, alice-2, ...)."""
    base = _NOT_USERNAME.sub("-", wanted or "").strip("-.")[: USERNAME_MAX - 8] or "user"
    users = get_user_model().objects
    name, n = base, 1
    while users.filter(username__iexact=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def user_for_identity(
    *,
    provider: str,
    subject: str,
    username: str,
    email: str,
    first_name: str = "",
    last_name: str = "",
) -> AbstractBaseUser:
    """The user signed in as `subject` at `provider`; created at the first sign-in.

    Name and email follow the provider at every sign-in (it is the source of truth for
    them). A new user gets no usable password: they sign in through the provider."""
    link = (
        ExternalIdentity.objects.select_related("user")
        .filter(provider=provider, subject=subject)
        .first()
    )
    if link is not None:
        user = link.user
        fresh = {"email": email, "first_name": first_name[:150], "last_name": last_name[:150]}
        changed = [name for name, value in fresh.items() if value and getattr(user, name) != value]
        for name in changed:
            setattr(user, name, fresh[name])
        if changed:
            user.save(update_fields=changed)
        ExternalIdentity.objects.filter(pk=link.pk).update(last_sign_in=timezone.now())
        return user
    refusal = site_email_refusal(email)
    if refusal:
        raise IdentityRefused(refusal)
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=username_free(username or email.partition("@")[0]),
                email=email,
                first_name=first_name[:150],
                last_name=last_name[:150],
            )
            user.set_unusable_password()
            user.save(update_fields=["password"])
            ExternalIdentity.objects.create(user=user, provider=provider, subject=subject)
    except IntegrityError:
        # The same person's other tab signed in first: theirs is the account.
        return (
            ExternalIdentity.objects.select_related("user")
            .get(provider=provider, subject=subject)
            .user
        )
    return user


def user_is_breakglass(user: AbstractBaseUser) -> bool:
    return bool(user.pk) and BreakGlassAdmin.objects.filter(user_id=user.pk).exists()


def user_may_use_password(user: AbstractBaseUser) -> bool:
    """Local passwords (sign-in, change, reset): everyone's, unless the site is SSO only,
    where only the break-glass admin keeps one."""
    return not settings.SSO_ONLY or user_is_breakglass(user)


def breakglass_admin_create(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """Create (or reset) the break-glass admin: a superuser with a local password that
    SSO-only mode still accepts. An existing account of that name becomes it."""
    if not username:
        raise ValueError(_("The break-glass admin needs a username."))
    users = get_user_model().objects
    with transaction.atomic():
        user = users.filter(username__iexact=username).first()
        if user is None:
            user = users.create_user(username=username, email=email)
        elif ExternalIdentity.objects.filter(user=user).exists():
            raise ValueError(
                _(
                    "%(name)s signs in through the identity provider; choose another name "
                    "for the break-glass admin."
                )
                % {"name": user.username}
            )
        if email:
            user.email = email
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        BreakGlassAdmin.objects.get_or_create(user=user)
    return user
