"""The API's JSON body parser: DRF's, with the limits of `challenges.json_limits`.

Set as the default in REST_FRAMEWORK and used by every view that names a JSON parser, so
no route decodes a client's JSON without them (tests/security/test_json_limits.py walks
the URL patterns to keep it so)."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from challenges.json_limits import JSONLimitError, json_loads_bounded


class BoundedJSONParser(JSONParser):
    """JSON bodies of at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes and MAX_DEPTH levels."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = b"" if stream is None else stream.read(-1 if limit is None else limit + 1)
        if limit is not None and len(raw) > limit:
            raise ParseError(
                _("JSON body larger than %(limit)s bytes; send less, or a file upload.")
                % {"limit": limit}
            )
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads_bounded(raw.decode(encoding), where=_("the request body"))
        except JSONLimitError as exc:
            raise ParseError(str(exc)) from None
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from None
