"""Which parts of the code base are translated, in one place: `manage.py translations`
extracts their strings into locale/<lang>/LC_MESSAGES/django.po, and tests/test_i18n.py
checks that every string they show is marked and translated.

To bring another app under translation (the planned pass over challenges/ and workers/
for bundle problems and API errors), add it to TRANSLATED, mark its strings, run
`manage.py translations` and translate the new entries: the check then covers it.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
# Top-level source folders whose templates and Python strings are translated.
TRANSLATED: tuple[str, ...] = ("frontend",)
# Translations kept for each language but English, the source language.
LANGUAGES: tuple[str, ...] = ("ja",)


def makemessages_arguments(root: Path = ROOT) -> list[str]:
    """`manage.py makemessages` arguments that read only the TRANSLATED folders."""
    ignored = sorted(
        path.name for path in root.iterdir() if path.is_dir() and path.name not in TRANSLATED
    )
    return [
        *[f"--locale={language}" for language in LANGUAGES],
        "--add-location=file",
        "--no-obsolete",
        *[f"--ignore={name}" for name in ignored],
    ]


def catalogues(root: Path = ROOT) -> list[Path]:
    return [root / "locale" / language / "LC_MESSAGES" / "django.po" for language in LANGUAGES]
