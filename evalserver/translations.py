"""Which parts of the code base are translated, in one place: `manage.py translations`
extracts their strings into locale/<lang>/LC_MESSAGES/django.po, and tests/test_i18n.py
checks that every string they show is marked and translated.

To bring another folder or file under translation, add it to TRANSLATED, mark its
strings, run `manage.py translations` and translate the new entries: the check then
covers it.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
# Source folders (their templates and Python) and single files whose strings are
# translated, relative to the repository.
TRANSLATED: tuple[str, ...] = (
    "frontend",
    "challenges/admin.py",
    "evalserver/urls.py",
    # What hosts and participants read from the rules: bundle problems, refusals, quota
    # messages and the API's error details. Management commands' output stays English.
    "challenges/bundle",
    "challenges/services/bundles.py",
    "challenges/access.py",
    "challenges/submission_access.py",
    "challenges/leaderboard_access.py",
    "challenges/services/submissions",
    "challenges/api",
    # Services that name what only hosts (or a team) may do, for the refusal.
    "challenges/services/hosting.py",
    "challenges/services/resumable.py",
    "challenges/services/submission_choices.py",
    "challenges/tournaments",
    # Teams, their participation and merges, the deadlines they name, webhooks' refusals,
    # what sign-in, the forum and notifications (mails included) say, analytics' headers.
    "challenges/services/participation.py",
    "challenges/services/teams.py",
    "challenges/services/merges.py",
    "challenges/deadlines.py",
    "challenges/services/webhooks.py",
    "challenges/text_checks.py",
    "challenges/json_limits.py",
    "challenges/ids.py",
    "challenges/identity",
    "challenges/discussion",
    "challenges/notifications",
    "challenges/analytics",
    "challenges/failure_text.py",
)
# Translations kept for each language but English, the source language.
LANGUAGES: tuple[str, ...] = ("ja",)


def makemessages_arguments(root: Path = ROOT) -> list[str]:
    """`manage.py makemessages` arguments that read only what TRANSLATED names: every
    folder and file outside it is ignored, down to the level of the entries it names."""
    wanted = {Path(entry) for entry in TRANSLATED}
    around = {parent for entry in wanted for parent in entry.parents if parent != Path(".")}
    ignored: list[str] = []

    def walk(folder: Path) -> None:
        for path in sorted((root / folder).iterdir()):
            rel = path.relative_to(root)
            if rel in wanted or path.name == "__pycache__":
                continue
            if rel in around:
                walk(rel)
            elif path.is_dir() or folder != Path("."):
                ignored.append(str(rel))

    walk(Path("."))
    return [
        *[f"--locale={language}" for language in LANGUAGES],
        "--add-location=file",
        "--no-obsolete",
        *[f"--ignore={name}" for name in sorted(ignored)],
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
