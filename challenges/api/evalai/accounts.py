"""EvalAI's sign-in routes, for `evalai login`: a username and password for a token.

`auth/login` hands the request to whatever view serves our own /api/v1/auth/token/, so
every rule of that view (throttles, which tokens it gives) holds here as well.
"""

from __future__ import annotations

from django.urls import resolve, reverse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.response import Response

from challenges.api.evalai.base import EvalAIView


@csrf_exempt
def login(request, *args, **kwargs):
    return resolve(reverse("api-token")).func(request)


class AuthToken(EvalAIView):
    """`accounts/user/get_auth_token`: EvalAI swaps a sign-in token for a lasting one; ours
    is the same token."""

    def get(self, request):
        return Response({"token": request.auth.key})
