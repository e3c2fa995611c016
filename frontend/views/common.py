"""What every page view shares: domain errors turned into helpful pages, JSON for uploads."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from challenges.access import AccessDenied
from challenges.ids import is_id
from challenges.throttles import ScopedThrottle, throttle


def page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Missing or hidden rows answer 404 (no existence leak); AccessDenied answers 403 with
    its message, which says why and is safe to show."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except AccessDenied as exc:
            raise PermissionDenied(str(exc)) from exc
        except ObjectDoesNotExist:
            raise Http404(_("There is nothing here, or you may not see it.")) from None

    return wrapper


def wants_json(request: HttpRequest) -> bool:
    """Uploads sent by app.js (XMLHttpRequest, for the progress bar) ask for JSON."""
    return "application/json" in request.headers.get("Accept", "")


def json_redirect(request: HttpRequest, url: str) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"ok": True, "redirect": url})
    return redirect(url)


def safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def int_param(value: str | None) -> int | None:
    """A query-string id, or None for anything that is not a small positive integer."""
    return int(value) if is_id(value) else None


def throttle_page(*scopes: tuple[str, type[ScopedThrottle]]) -> Callable:
    """Decorate a page view: its POSTs count against each (scope, kind) of
    challenges.throttles; over any of them the page answers 429 with Retry-After."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                for scope, kind in scopes:
                    limiter = throttle(scope, kind)()
                    if not limiter.allow_request(request, None):
                        seconds = max(1, math.ceil(limiter.wait() or 60))
                        response = render(
                            request, "frontend/too_many.html", {"retry_after": seconds}, status=429
                        )
                        response["Retry-After"] = str(seconds)
                        return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
