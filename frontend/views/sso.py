"""Company sign-in pages: the start of the OpenID Connect flow and its callback.

The library's views do the protocol (state, nonce and PKCE in the session; the code
exchange in the backend); these add the endpoint from discovery and turn every refusal
into the login page with a message instead of an error page."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from challenges.identity.oidc import DiscoveryError, provider_metadata

log = logging.getLogger(__name__)


def _unavailable(request):
    messages.error(
        request,
        _("%(provider)s does not answer at the moment; try again in a few minutes.")
        % {"provider": settings.OIDC_PROVIDER_NAME},
    )
    return redirect("login")


class OIDCStart(OIDCAuthenticationRequestView):
    def __init__(self, *args, **kwargs) -> None:
        # The library reads the endpoint here from a setting; ours comes from discovery
        # when someone actually starts signing in.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider_metadata()["authorization_endpoint"]
        except DiscoveryError as exc:
            log.error("OpenID Connect sign-in cannot start: %s", exc)
            return _unavailable(request)
        return super().get(request)


class OIDCCallback(OIDCAuthenticationCallbackView):
    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404
        try:
            return super().get(request)
        except SuspiciousOperation as exc:
            # A state this browser never started (a forged or replayed callback).
            log.warning("OpenID Connect callback refused: %s", exc)
            return self.login_failure()
        except DiscoveryError as exc:
            log.error("OpenID Connect callback: %s", exc)
            return _unavailable(request)

    def login_failure(self):
        refusal = getattr(self.request, "oidc_refusal", "")
        if refusal:
            messages.error(self.request, refusal)
        elif self.request.GET.get("error"):
            messages.error(
                self.request,
                _("%(provider)s did not sign you in (%(error)s).")
                % {
                    "provider": settings.OIDC_PROVIDER_NAME,
                    "error": self.request.GET.get("error_description") or self.request.GET["error"],
                },
            )
        else:
            messages.error(
                self.request,
                _(
                    "Signing in with %(provider)s did not complete: the answer was expired, "
                    "already used or not for this browser. Start again from this page."
                )
                % {"provider": settings.OIDC_PROVIDER_NAME},
            )
        return redirect("login")
