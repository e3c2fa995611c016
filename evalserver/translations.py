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
# Source folders (their templates and Python) and single files whose strings are
# translated, relative to the repository.
TRANSLATED: tuple[str, ...] = ("frontend", "challenges/admin.py", "evalserver/urls.py")
# Translations kept for each language but English, the source language.
LANGUAGES: tuple[str, ...] = ("ja",)


def makemessages_arguments(root: Path = ROOT) -> list[str]:
    """`manage.py makemessages` arguments that read only what TRANSLATED names: every
    other top-level folder is ignored, and so is every sibling of a single file."""
    wanted = [Path(entry) for entry in TRANSLATED]
    partly = {entry.parts[0] for entry in wanted if len(entry.parts) > 1}
    ignored = [
        path.name
        for path in root.iterdir()
        if path.is_dir() and path.name not in TRANSLATED and path.name not in partly
    ]
    for entry in wanted:
        if len(entry.parts) > 1:
            ignored += [
                str(sibling.relative_to(root))
                for sibling in (root / entry.parent).iterdir()
                if sibling.name != entry.name and sibling.name != "__pycache__"
            ]
    ignored.sort()
    return [
        *[f"--locale={language}" for language in LANGUAGES],
        "--add-location=file",
        "--no-obsolete",
        *[f"--ignore={name}" for name in ignored],
    ]


def python_files(root: Path = ROOT) -> list[Path]:
    """The Python files whose shown strings must be marked (tests/test_i18n.py)."""
    found: list[Path] = []
    for entry in TRANSLATED:
        path = root / entry
        found += [path] if path.is_file() else path.glob("**/*.py")
    return sorted(p for p in found if not {"migrations", "management"} & set(p.parts))


def template_files(root: Path = ROOT) -> list[Path]:
    return sorted(
        path
        for entry in TRANSLATED
        if (root / entry).is_dir()
        for path in (root / entry).glob("**/templates/**/*.html")
    )


def catalogues(root: Path = ROOT) -> list[Path]:
    return [root / "locale" / language / "LC_MESSAGES" / "django.po" for language in LANGUAGES]
