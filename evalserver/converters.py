"""URL converters shared by the API and the pages."""

from django.urls import register_converter


class CodenameConverter:
    """Phase and split codenames and file names: any text but "/" and NUL (which
    PostgreSQL refuses, so a NUL would otherwise surface as a 500)."""

    regex = "[^/\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(CodenameConverter, "codename")
