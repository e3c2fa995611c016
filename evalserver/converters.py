"""URL converters shared by the API and the pages."""

from django.urls import register_converter

from challenges.ids import ID_PATTERN


class CodenameConverter:
    """Phase and split codenames and file names: any text but "/" and NUL (which
    PostgreSQL refuses, so a NUL would otherwise surface as a 500)."""

    regex = "[^/\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class IdConverter:
    """Row ids in paths, used instead of Django's `<id:>`: at most 18 digits, so
    `/submissions/99999999999999999999/` is a 404 instead of an OverflowError from the
    database driver (challenges.ids)."""

    regex = ID_PATTERN

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int | str) -> str:
        return str(value)


register_converter(CodenameConverter, "codename")
register_converter(IdConverter, "id")
