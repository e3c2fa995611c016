"""REST API: resumable uploads, tus 1.0.0 (core, creation, termination, checksum) plus a
finish step.

    POST   /api/v1/uploads/            Upload-Length, Upload-Metadata -> 201, Location
    HEAD   /api/v1/uploads/<id>/       -> Upload-Offset, Upload-Length
    PATCH  /api/v1/uploads/<id>/       Upload-Offset, application/offset+octet-stream body,
                                       optionally Upload-Checksum (sha1 or sha256, base64)
    DELETE /api/v1/uploads/<id>/       termination
    POST   /api/v1/uploads/<id>/finish/  -> the submission / challenge / public data made

Upload-Metadata (tus: comma-separated `key base64(value)`): `kind` (submission, bundle,
public_data), `filename`, `sha256` (required), and per kind `challenge`, `phase`
(codename), `host_team`, and a submission's `method_name`, `method_description`,
`project_url`, `publication_url`, `meta_attributes` (JSON), `is_public`.
See docs/transfers.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from django.conf import settings
from django.urls import path, reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from challenges import access
from challenges.access import access_challenge_as_host
from challenges.api.views import resolve_host_team
from challenges.ids import InvalidId, parse_id
from challenges.json_limits import json_loads_bounded
from challenges.models import ResumableUpload
from challenges.services.resumable import (
    CHECKSUM_ALGORITHMS,
    Checksum,
    Target,
    UploadRefused,
    access_upload,
    resumable_upload_append,
    resumable_upload_create,
    resumable_upload_delete,
    resumable_upload_finish,
)
from challenges.submission_access import access_submitter
from challenges.text_checks import bidi_problem
from challenges.throttles import submit_throttles

TUS_VERSION = "1.0.0"
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}
_FIELDS = ("method_name", "method_description", "project_url", "publication_url")


class OffsetOctetStream(BaseParser):
    """Declared so DRF accepts the tus body's type; the view reads the stream itself."""

    media_type = "application/offset+octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


def parse_metadata(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in (header or "").split(","))):
        key, _sep, value = pair.partition(" ")
        try:
            out[key] = base64.b64decode(value, validate=True).decode() if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise UploadRefused(
                f"Upload-Metadata: the value of {key[:40]!r} is not base64 of UTF-8 text.",
                field="Upload-Metadata",
            ) from None
        if "\x00" in out[key] or "\x00" in key:
            # PostgreSQL stores no NUL; refused here rather than failing there.
            raise UploadRefused(
                f"Upload-Metadata: the value of {key[:40].replace(chr(0), '')!r} contains a NUL "
                "character.",
                field="Upload-Metadata",
            )
    return out


def _int_header(request, name: str, *, required: bool = True) -> int | None:
    raw = request.headers.get(name)
    if raw is None or raw == "":
        if required:
            raise UploadRefused(f"The {name} header is required.", field=name)
        return None
    if not raw.isdigit() or len(raw) > 15:
        raise UploadRefused(f"{name} must be a non-negative integer, not {raw[:40]!r}.", field=name)
    return int(raw)


def parse_checksum(header: str) -> Checksum | None:
    """Upload-Checksum: `<algorithm> <base64 digest>` (tus checksum extension)."""
    if not header.strip():
        return None
    algorithm, _sep, value = header.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise UploadRefused(
            f"Upload-Checksum: {algorithm[:20]!r} is not an algorithm this server checks; "
            f"use one of {', '.join(CHECKSUM_ALGORITHMS)}.",
            field="Upload-Checksum",
        )
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    size = hashlib.new(algorithm).digest_size
    if len(digest) != size:
        raise UploadRefused(
            f"Upload-Checksum: the {algorithm} digest must be {size} bytes in base64, "
            "after the algorithm and one space.",
            field="Upload-Checksum",
        )
    return Checksum(algorithm, digest)


def _metadata_id(raw: str) -> int:
    try:
        return parse_id(raw, field="Upload-Metadata `challenge`")
    except InvalidId as exc:
        raise UploadRefused(str(exc), field="Upload-Metadata") from None


def _target(request, meta: dict[str, str]) -> Target:
    kind = meta.get("kind", "submission")
    challenge_raw = meta.get("challenge", "")
    if kind in ("submission", "public_data"):
        if not challenge_raw or not meta.get("phase"):
            raise UploadRefused(
                "Upload-Metadata needs `challenge` (an id) and `phase` (a codename).",
                field="Upload-Metadata",
            )
        challenge_id = _metadata_id(challenge_raw)
        phase = access.access_phase(request.user, challenge_id, codename=meta["phase"])
        if kind == "public_data":
            return Target(kind=kind, phase=phase)
        return Target(kind=kind, phase=phase, submitter=access_submitter(request.user, phase))
    if kind == "bundle":
        if challenge_raw:
            challenge = access_challenge_as_host(request.user, _metadata_id(challenge_raw))
            return Target(kind=kind, challenge=challenge, host_team=challenge.host_team)
        return Target(kind=kind, host_team=resolve_host_team(request.user, meta.get("host_team")))
    raise UploadRefused(
        f"Unknown upload kind {kind!r}; use submission, bundle or public_data.", field="kind"
    )


def _fields(meta: dict[str, str]) -> dict:
    fields: dict = {k: meta[k] for k in _FIELDS if k in meta}
    # Refused before the bytes come, as submission_create would refuse it after.
    problem = bidi_problem(fields.get("method_name", ""), what=_("Method name"))
    if problem:
        raise UploadRefused(problem, field="method_name")
    if meta.get("meta_attributes"):
        try:
            parsed = json_loads_bounded(meta["meta_attributes"], where="meta_attributes")
        except ValueError as exc:
            raise UploadRefused(str(exc), field="meta_attributes") from None
        if not isinstance(parsed, dict):
            raise UploadRefused(
                "`meta_attributes` must be a JSON object of name -> value.",
                field="meta_attributes",
            )
        fields["meta_attributes"] = parsed
    if meta.get("is_public", "") != "":
        fields["is_public"] = meta["is_public"].lower() in ("1", "true", "yes")
    return fields


class _Tus(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [OffsetOctetStream]

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = TUS_VERSION
        response["Cache-Control"] = "no-store"
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        version = request.headers.get("Tus-Resumable")
        if request.method != "OPTIONS" and version and version != TUS_VERSION:
            raise UploadRefused(
                f"This server speaks tus {TUS_VERSION}, not {version}.", status_code=412
            )


class UploadCreate(_Tus):
    def get_throttles(self):
        return [t() for t in submit_throttles()] if self.request.method == "POST" else []

    def options(self, request, *args, **kwargs):
        return Response(
            status=status.HTTP_204_NO_CONTENT,
            headers={
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": "creation,termination,checksum",
                "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
                "Tus-Max-Size": str(settings.RESUMABLE_UPLOAD_MAX_BYTES),
            },
        )

    @extend_schema(
        operation_id="upload_create",
        request=None,
        responses={
            201: OpenApiResponse(description="Location of the upload; {id, offset, length}"),
            413: OpenApiResponse(description="Upload-Length passes a limit (named)"),
            429: OpenApiResponse(description="a quota is used up; see Retry-After"),
        },
    )
    def post(self, request):
        """Create a resumable upload: declare its size, name and sha256; all checks that need
        no content (access, size limits, team storage, quotas) are made now."""
        length = _int_header(request, "Upload-Length")
        meta = parse_metadata(request.headers.get("Upload-Metadata", ""))
        upload = resumable_upload_create(
            user=request.user,
            target=_target(request, meta),
            file_name=meta.get("filename", ""),
            length=length,
            sha256=meta.get("sha256", ""),
            fields=_fields(meta),
        )
        location = request.build_absolute_uri(reverse("api-upload", args=[upload.pk]))
        return Response(
            {"id": upload.pk, "offset": 0, "length": upload.length, "url": location},
            status=status.HTTP_201_CREATED,
            headers={"Location": location, "Upload-Offset": "0"},
        )


def _state(upload: ResumableUpload) -> dict:
    return {
        "id": upload.pk,
        "kind": upload.kind,
        "file_name": upload.file_name,
        "offset": upload.offset,
        "length": upload.length,
        "sha256": upload.sha256,
        "finished": upload.finished_at is not None,
        "result": upload.result,
    }


class UploadDetail(_Tus):
    def _headers(self, upload: ResumableUpload) -> dict[str, str]:
        return {"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length)}

    @extend_schema(operation_id="upload_head", responses={200: None})
    def head(self, request, upload_id: str):
        """tus: the offset the server has, to resume from."""
        upload = access_upload(request.user, upload_id)
        return Response(status=status.HTTP_200_OK, headers=self._headers(upload))

    @extend_schema(operation_id="upload_get", responses=OpenApiResponse(description="state"))
    def get(self, request, upload_id: str):
        """The upload's state as JSON (offset, length, finished, what it made)."""
        upload = access_upload(request.user, upload_id)
        return Response(_state(upload), headers=self._headers(upload))

    @extend_schema(
        operation_id="upload_patch",
        request={"application/offset+octet-stream": bytes},
        responses={
            204: None,
            409: OpenApiResponse(description="wrong Upload-Offset"),
            460: OpenApiResponse(description="the body does not match its Upload-Checksum"),
        },
    )
    def patch(self, request, upload_id: str):
        """tus: append bytes at Upload-Offset. The body is streamed into storage."""
        upload = access_upload(request.user, upload_id)
        if request.content_type.split(";")[0].strip() != OffsetOctetStream.media_type:
            raise UploadRefused(
                f"A PATCH body must be {OffsetOctetStream.media_type}.", status_code=415
            )
        offset = _int_header(request, "Upload-Offset")
        body_length = _int_header(request, "Content-Length", required=False)
        checksum = parse_checksum(request.headers.get("Upload-Checksum", ""))
        # The WSGI request's own stream, read in chunks: DRF's request.data is never touched.
        new = resumable_upload_append(
            upload=upload,
            offset=offset,
            body=request._request,
            body_length=body_length,
            checksum=checksum,
        )
        return Response(status=status.HTTP_204_NO_CONTENT, headers={"Upload-Offset": str(new)})

    @extend_schema(operation_id="upload_delete", responses={204: None})
    def delete(self, request, upload_id: str):
        """tus termination: forget the upload and its stored parts."""
        upload = access_upload(request.user, upload_id)
        if upload.finished_at is None:
            resumable_upload_delete(upload=upload)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UploadFinish(_Tus):
    parser_classes = []

    @extend_schema(
        operation_id="upload_finish",
        request=None,
        responses={
            201: OpenApiResponse(description="{submission, status} | {challenge, ...} | ..."),
            409: OpenApiResponse(description="bytes missing"),
            460: OpenApiResponse(description="sha256 mismatch; the upload is discarded"),
        },
    )
    def post(self, request, upload_id: str):
        """Verify the sha256 of the complete upload and make what it is for."""
        upload = access_upload(request.user, upload_id)
        result = resumable_upload_finish(upload=upload, user=request.user)
        return Response(result, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("uploads/", UploadCreate.as_view(), name="api-uploads"),
    path("uploads/<str:upload_id>/", UploadDetail.as_view(), name="api-upload"),
    path("uploads/<str:upload_id>/finish/", UploadFinish.as_view(), name="api-upload-finish"),
]
