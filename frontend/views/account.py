"""Account pages: sign-up, log-in and log-out, password change, API tokens. Sign-in
style pages are throttled per address and per username (challenges.throttles)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.mail import send_mail
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from challenges.identity.accounts import user_may_use_password
from challenges.services.tokens import (
    token_expires_at,
    token_public_id,
    token_revoke,
    token_rotate,
)
from challenges.throttles import PerAddress, PerEmail, PerUsername
from frontend.forms import LocalPasswordResetForm, SignupForm
from frontend.views.common import safe_next, throttle_page


@throttle_page(("signup_ip", PerAddress), ("signup_email", PerEmail))
def signup(request):
    """The same answer whether or not the email is known (no account enumeration): the
    account is made either way; a known address's owner is told by email."""
    if request.user.is_authenticated:
        return redirect("home")
    if settings.SSO_ONLY:
        messages.info(
            request,
            _("Accounts here come from your organisation's sign-in: sign in below instead."),
        )
        # Links to sign-up elsewhere on the site carry where to go next; so does this.
        target = safe_next(request, "")
        return redirect(f"{reverse('login')}?{urlencode({'next': target})}" if target else "login")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        known = get_user_model().objects.filter(email__iexact=email).exists()
        user = form.save()
        if known:
            _tell_known_address(request, email, user.username)
        login(request, user, backend="challenges.identity.local.LocalPasswordBackend")
        messages.success(
            request,
            _("Welcome, %(username)s. Create or join a team, then take part in a challenge.")
            % {"username": user.username},
        )
        return redirect(safe_next(request, "/teams/"))
    return render(
        request, "registration/signup.html", {"form": form, "next": request.GET.get("next", "")}
    )


def _tell_known_address(request, email: str, username: str) -> None:
    reset = request.build_absolute_uri(reverse("password_reset"))
    # In the language of the page that signed up: the best guess of what the owner reads.
    send_mail(
        _("A new evalserver account uses your email address"),
        _(
            "Someone signed up as “%(username)s” with this address, which another account "
            "already uses. If it was you, there is nothing to do. If you meant to reach your "
            "existing account, reset its password at %(url)s."
        )
        % {"username": username, "url": reset},
        settings.DEFAULT_FROM_EMAIL,
        [email],
        fail_silently=True,
    )


login_view = throttle_page(("login_ip", PerAddress), ("login_user", PerUsername))(
    auth_views.LoginView.as_view()
)
password_reset_view = throttle_page(
    ("password_reset_ip", PerAddress), ("password_reset_user", PerUsername)
)(
    auth_views.PasswordResetView.as_view(
        template_name="frontend/accounts/password_reset_form.html",
        # Mails only those who may use a password (SSO only: the break-glass admin).
        form_class=LocalPasswordResetForm,
    )
)


class LogoutView(auth_views.LogoutView):
    """Ends this browser's session. The API token is the bots' and stays valid unless the
    form asks to revoke it too (`revoke_token`): see challenges.services.tokens."""

    def post(self, request, *args, **kwargs):
        user = request.user
        revoked = False
        if user.is_authenticated and request.POST.get("revoke_token"):
            for token in Token.objects.filter(user=user):
                revoked |= token_revoke(user=user, public_id=token_public_id(token))
        response = super().post(request, *args, **kwargs)
        if revoked:
            messages.info(request, _("You are logged out, and your API token is revoked."))
        elif user.is_authenticated and Token.objects.filter(user=user).exists():
            messages.info(
                request,
                _(
                    "You are logged out of this browser. Your API token still works for your "
                    "scripts; revoke it on the API tokens page when you no longer need it."
                ),
            )
        return response


_password_change = auth_views.PasswordChangeView.as_view(
    template_name="frontend/accounts/password_change_form.html",
    success_url="/accounts/password/done/",
)


@login_required
def password_change_view(request, *args, **kwargs):
    """Users who sign in through the organisation have no password here to change."""
    if not user_may_use_password(request.user) or not request.user.has_usable_password():
        messages.info(
            request,
            _("You sign in with your organisation's account: change its password there."),
        )
        return redirect("tokens")
    return _password_change(request, *args, **kwargs)


password_change_done_view = login_required(
    auth_views.PasswordChangeDoneView.as_view(
        template_name="frontend/accounts/password_change_done.html"
    )
)


@login_required
def tokens(request):
    """List, create, rotate and revoke one's API tokens."""
    new_key = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "rotate":
            # Shown in this answer only: a flash message would carry the key in a cookie.
            new_key = token_rotate(user=request.user).key
        elif action == "revoke":
            if token_revoke(user=request.user, public_id=request.POST.get("id", "")):
                messages.success(request, _("The token is revoked; scripts using it are refused."))
            else:
                messages.error(request, _("You have no token with that id."))
        if new_key is None:
            return redirect("tokens")
    rows = [
        {"id": token_public_id(t), "created": t.created, "expires_at": token_expires_at(t)}
        for t in Token.objects.filter(user=request.user)
    ]
    return render(
        request,
        "frontend/accounts/tokens.html",
        {
            "tokens": rows,
            "ttl_days": settings.TOKEN_TTL_DAYS,
            "new_key": new_key,
            "has_password": request.user.has_usable_password()
            and user_may_use_password(request.user),
            "site_url": request.build_absolute_uri("/").rstrip("/"),
        },
    )
