"""The API's operations, read from the OpenAPI schema the app serves, with their path
parameters filled from the page tests' world. The fuzz and the authorisation table both
walk this list, so an endpoint added to the API is covered the day it appears."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from challenges.models import ChatHook, Post, ResumableUpload, TeamMerge, Thread, Webhook


@dataclass(frozen=True)
class Operation:
    method: str  # "GET", "POST", ...
    path: str  # as the schema writes it: /api/v1/submissions/{submission_id}/
    params: tuple[tuple[str, str, str], ...]  # (name, in, type)
    body_fields: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, values: dict[str, str]) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: quote(str(values[m.group(1)]), safe=""), self.path)


def schema() -> dict:
    response = APIClient().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200, response.content[:500]
    return response.json()


def _body_fields(spec: dict, op: dict) -> tuple[str, ...]:
    content = op.get("requestBody", {}).get("content", {})
    for media in content.values():
        ref = media.get("schema", {}).get("$ref", "")
        if ref:
            component = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
            return tuple(component.get("properties", {}))
    return ()


def operations() -> list[Operation]:
    spec = schema()
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = tuple(
                (p["name"], p["in"], p.get("schema", {}).get("type", "string"))
                for p in op.get("parameters", [])
            )
            found.append(Operation(method.upper(), path, params, _body_fields(spec, op)))
    return found


def path_values(world, users) -> dict[str, str]:
    """Real ids of the world for every path parameter the API has; a new parameter name
    fails here, loudly, until someone says what it should point at."""
    webhook, _ = Webhook.objects.get_or_create(
        team=world.charlie_team,
        challenge=world.challenge,
        defaults={
            "url": "http://127.0.0.1:9/hook",
            "secret": "s" * 32,
            "created_by": users["charlie"],
        },
    )
    token, _ = Token.objects.get_or_create(user=users["charlie"])
    stored = world.charlie_sub.input_file.name
    if not default_storage.exists(stored):  # the file the submission's row names
        default_storage.save(stored, ContentFile(b"id,label\n1"[: world.charlie_sub.input_size]))
    upload, _ = ResumableUpload.objects.get_or_create(
        id="0" * 32,
        defaults={
            "user": users["charlie"],
            "kind": ResumableUpload.Kind.SUBMISSION,
            "challenge": world.challenge,
            "phase": world.challenge.phases.get(codename="test"),
            "team": world.charlie_team,
            "file_name": "p.csv",
            "length": 10,
            "sha256": "0" * 64,
            "updated_at": timezone.now(),
        },
    )
    # dave's team asks charlie's to merge (the receiving team's leader decides).
    merge, _ = TeamMerge.objects.get_or_create(
        challenge=world.challenge,
        requesting_team=world.dave_team,
        receiving_team=world.charlie_team,
        status=TeamMerge.Status.PENDING,
        defaults={
            "requesting_team_name": world.dave_team.name,
            "receiving_team_name": world.charlie_team.name,
            "requested_by": users["dave"],
        },
    )
    # charlie's thread in the forum, its first post (his), and the hosts' chat hook.
    thread = Thread.objects.filter(challenge=world.challenge, author=users["charlie"]).first()
    if thread is None:
        thread = Thread.objects.create(
            challenge=world.challenge, title="How are ties broken?", author=users["charlie"]
        )
        Post.objects.create(thread=thread, author=users["charlie"], body="Asking for a friend.")
    post = thread.posts.order_by("pk").first()
    hook, _ = ChatHook.objects.get_or_create(
        challenge=world.challenge,
        defaults={
            "flavour": ChatHook.Flavour.SLACK,
            "url": "https://hooks.example.org/x",
            "events": ["announcement"],
            "created_by": users["alice"],
        },
    )
    return {
        "thread_id": str(thread.pk),
        "post_id": str(post.pk),
        "hook_id": str(hook.pk),
        "token_id": token.key[:8],
        "merge_id": str(merge.pk),
        "challenge_id": str(world.challenge.pk),
        "codename": "test",
        "split": "public",
        "name": "train.csv",
        "submission_id": str(world.charlie_sub.pk),
        "team_id": str(world.charlie_team.pk),
        "webhook_id": str(webhook.pk),
        # A round number: the world's phase is no tournament, so these routes answer as
        # for a phase without rounds (tests/challenges/test_tournaments.py has its own
        # table on a tournament phase).
        "number": "1",
        "model_id": "1",
        # charlie's unfinished resumable upload
        "upload_id": upload.pk,
    }


def request(
    client: APIClient,
    method: str,
    url: str,
    *,
    query=None,
    data=None,
    raw: str | bytes | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    format: str | None = None,
):
    """One request, undone afterwards (a DELETE or a team's leave must not change what the
    next request meets); a server error comes back as a 500 response, never raised.
    `raw`: the body as given (a JSON text, say) with `content_type`; `headers`: extra
    request headers by their HTTP names."""
    client.raise_request_exception = False
    call = getattr(client, method.lower())
    if query and (method != "GET" or raw is not None):
        url = f"{url}?{'&'.join(f'{quote(k)}={quote(v)}' for k, v in query.items())}"
    extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in (headers or {}).items()}
    with transaction.atomic():
        if raw is not None:
            response = client.generic(method, url, raw, content_type=content_type, **extra)
        elif method == "GET":
            response = call(url, query or {}, **extra)
        else:
            body_format = format or ("multipart" if method == "POST" else "json")
            response = call(url, data or {}, format=body_format, **extra)
        transaction.set_rollback(True)
    return response


def evalai_urls(values: dict[str, str]) -> list[str]:
    """EvalAI's routes (not in the OpenAPI schema), their groups filled from `values`
    (a group without a value gets "1")."""
    from django.urls import URLPattern, get_resolver

    found = []
    for entry in get_resolver().url_patterns:
        if str(entry.pattern) != "api/":
            continue
        for route in entry.url_patterns:
            if not isinstance(route, URLPattern):
                continue
            text = str(route.pattern).removeprefix("^").removesuffix("$").removesuffix("/?")
            text = re.sub(
                r"\(\?P<(\w+)>[^)]*\)", lambda m: quote(values.get(m.group(1), "1"), safe=""), text
            )
            found.append("/api/" + text.replace("\\", ""))
    return found
