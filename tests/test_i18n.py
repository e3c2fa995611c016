"""Every string a person reads is marked for translation and translated.

The scope is evalserver.translations.TRANSLATED (the folders and files whose strings are
translated); add one there and these checks cover its templates and Python too.

- Templates: Django's own Lexer splits each template; text outside translate tags (and
  the attributes people read: title, placeholder, aria-label, alt, data-confirm) must not
  hold words, apart from names and data in ALLOWED_WORDS.
- Python: an ast scan of the calls that show a string (messages.*, ValidationError,
  add_error, Http404, HttpResponse bodies, send_mail, and label / help_text /
  empty_label / error_messages; the rules' refusals: AccessDenied, SubmissionRefused and
  its kin, the bundle checker's Problem / report / error / warning, DRF's exceptions, and
  the "detail" of an API error body) refuses a plain or f-string literal there. The API's
  schema texts (OpenAPI descriptions, serializer help texts) are programmers' docs and
  stay English.
- Catalogues: `msgfmt --statistics` counts 0 untranslated and 0 fuzzy; the committed .mo
  is the compiled .po; and extracting the strings afresh finds none the catalogue lacks.
"""

from __future__ import annotations

import ast
import gettext
import html.parser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.template.base import Lexer, TokenType

from evalserver.translations import (
    ROOT,
    catalogues,
    makemessages_arguments,
    python_files,
    template_files,
)

# Words that stay as they are in every language: product, protocol and format names, and
# the log streams' own names.
ALLOWED_WORDS = {"evalserver", "API", "CSV", "sha256", "stdout", "stderr"}
# A word: two letters or more (a lone "v" of "v3", the "T" of an ISO date are not).
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Attributes whose values people read (or hear, for aria-label).
READ_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "data-confirm", "label"}
HOLE = " "  # where a variable, a tag or a translated string was


def shown_text(source: str) -> str:
    """The template with everything translated or computed replaced by HOLE: what is
    left is what it shows verbatim."""
    parts: list[str] = []
    closing: str | None = None  # inside {% blocktranslate %} or {% comment %} until this
    for token in Lexer(source).tokenize():
        if closing:
            if token.token_type == TokenType.BLOCK and token.contents.split()[0] == closing:
                closing = None
                parts.append(HOLE)
            continue
        if token.token_type == TokenType.TEXT:
            parts.append(token.contents)
            continue
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0]
            if name in ("blocktranslate", "blocktrans"):
                closing = "end" + name
            elif name == "comment":
                closing = "endcomment"
        parts.append(HOLE)
    return "".join(parts)


class _Reader(html.parser.HTMLParser):
    """Collects text nodes and read attributes, skipping scripts, styles and elements
    marked with HTML's own `translate="no"` (commands and code a person types as shown)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skip = 0
        self._literal: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        if self._literal or ("translate", "no") in attrs:
            self._literal.append(tag)
        for name, value in attrs:
            if value and (
                name in READ_ATTRIBUTES
                or (name == "value" and tag == "input" and ("type", "submit") in attrs)
            ):
                self.texts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if self._literal and self._literal[-1] == tag:
            self._literal.pop()

    def handle_data(self, data):
        if not self._skip and not self._literal:
            self.texts.append(data)


def untranslated_texts(source: str) -> list[str]:
    reader = _Reader()
    reader.feed(shown_text(source))
    reader.close()
    found = []
    for text in reader.texts:
        if words(text) - ALLOWED_WORDS:
            found.append(" ".join(text.split()))
    return found


def words(text: str) -> set[str]:
    return {w for w in WORD.findall(text) if sum(c.isalpha() for c in w) >= 2}


def test_the_scope_has_templates_and_python():
    assert len(template_files()) > 30 and len(python_files()) > 10
    assert ROOT / "challenges" / "admin.py" in python_files()
    for translated in (
        "bundle/archive.py",
        "access.py",
        "api/errors.py",
        "services/submissions/quotas.py",
    ):
        assert ROOT / "challenges" / translated in python_files()
    for translated in ("services/participation.py", "discussion/services.py", "failure_text.py"):
        assert ROOT / "challenges" / translated in python_files()


def test_every_template_text_is_inside_a_translate_tag():
    problems = {
        str(path.relative_to(ROOT)): texts
        for path in template_files()
        if (texts := untranslated_texts(path.read_text()))
    }
    assert problems == {}, "mark these with {% translate %} or {% blocktranslate %}"


def test_the_template_check_finds_plain_words_and_ignores_marked_ones():
    plain = (
        '{% load i18n %}<p title="Hello there">Log in</p><button data-confirm="Sure?">x</button>'
    )
    marked = (
        '{% load i18n %}<p title="{% translate "Hi" %}">{% translate "Log in" %}</p>'
        "{% blocktranslate %}Hello {{ name }}{% endblocktranslate %}<td>{{ x }} · CSV</td>"
        "<script>const a = 'words';</script>{# a comment #}"
    )
    assert untranslated_texts(plain) == ["Hello there", "Log in", "Sure?"]
    assert untranslated_texts(marked) == []


# Calls whose argument (by position, or keyword) a person reads.
SHOWN_POSITIONS = {
    "success": 1,
    "info": 1,
    "warning": 1,
    "error": 1,
    "debug": 1,
    "add_message": 2,
    "ValidationError": 0,
    "add_error": 1,
    "Http404": 0,
    "PermissionDenied": 0,
    "HttpResponse": 0,
    "HttpResponseBadRequest": 0,
    "HttpResponseForbidden": 0,
    "HttpResponseNotFound": 0,
    "send_mail": 0,
    "message_user": 1,
    # The rules' refusals (challenges/): what a host or a participant reads in a page, an
    # API error's detail or the broken-zip table.
    "AccessDenied": 0,
    "SubmissionRefused": 0,
    "FileTooLarge": 0,
    "QuotaExceeded": 1,
    "TournamentRefused": 0,
    "ParticipationError": 0,
    "MergeRefused": 0,
    "WebhookRefused": 0,
    "ForumRefused": 0,
    "IdentityRefused": 0,
    "UnsafeText": 0,
    "JSONLimitError": 0,
    "InvalidId": 0,
    "refusal": 0,
    "Problem": 0,
    "YamlProblem": 0,
    "MemberError": 0,
    "NotFound": 0,
    "ParseError": 0,
    "NotAuthenticated": 0,
    "AuthenticationFailed": 0,
    "MethodNotAllowed": 1,
    "UnknownLabel": 0,
    "require_challenge_host": 2,
    "require_submitting_team": 2,
    "require_team_member": 2,
    "require_participation": 1,
    "require_staff": 1,
}
# Calls whose LAST positional argument a person reads: the bundle checker's
# report(severity, [key,] message).
SHOWN_LAST = {"report", "script_report"}
# Keys of a dict literal whose value a person reads: the API's error bodies.
SHOWN_DICT_KEYS = {"detail", "error", "error_description", "message"}
SHOWN_KEYWORDS = {
    "label",
    "help_text",
    "empty_label",
    "error_messages",
    "message",
    "content",
    "description",  # admin actions and columns
}
MARKERS = {
    "_",
    "gettext",
    "gettext_lazy",
    "ngettext",
    "ngettext_lazy",
    "pgettext",
    "pgettext_lazy",
    "npgettext",
    "npgettext_lazy",
}


def _callee(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _plain(node: ast.AST | None) -> bool:
    """A literal a person would read untranslated: a str or f-string with words, one
    formatted with %, concatenated, or inside a dict (error_messages)."""
    if node is None:
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(words(node.value))
    if isinstance(node, ast.JoinedStr):
        return any(_plain(v) for v in node.values)
    if isinstance(node, ast.BinOp):
        return _plain(node.left) or (isinstance(node.op, ast.Add) and _plain(node.right))
    if isinstance(node, ast.Dict):
        return any(_plain(v) for v in node.values)
    return False  # a call (marked, or not ours to judge), a name, an attribute


# The API's schema (OpenAPI descriptions, serializer fields' help texts) is documentation
# for programmers and stays English like the API's field names; its error details do not.
SCHEMA_CALLS = {"extend_schema", "extend_schema_field", "inline_serializer"}
SCHEMA_KEYWORDS = {"help_text", "label", "description"}


def unmarked_strings(source: str, *, api: bool = False) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _callee(node) not in MARKERS:
            name = _callee(node)
            if name.startswith("OpenApi") or name in SCHEMA_CALLS:
                continue
            position = SHOWN_POSITIONS.get(name)
            shown = []
            if position is not None and len(node.args) > position:
                shown.append(node.args[position])
            if name == "send_mail" and len(node.args) > 1:
                shown.append(node.args[1])
            if name in SHOWN_LAST and node.args:
                shown.append(node.args[-1])
            shown += [
                k.value
                for k in node.keywords
                if k.arg in SHOWN_KEYWORDS and not (api and k.arg in SCHEMA_KEYWORDS)
            ]
            found += [(node.lineno, name) for arg in shown if _plain(arg)]
        elif isinstance(node, ast.Dict):
            found += [
                (value.lineno, key.value)
                for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant) and key.value in SHOWN_DICT_KEYS and _plain(value)
            ]
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in ("label", "help_text", "empty_label")
                    and _plain(node.value)
                ):
                    found.append((node.lineno, target.attr))
    return sorted(found)


def _is_api(path: Path) -> bool:
    return (ROOT / "challenges" / "api") in path.parents


def test_every_python_string_shown_to_people_is_marked():
    problems = {
        str(path.relative_to(ROOT)): lines
        for path in python_files()
        if (lines := unmarked_strings(path.read_text(), api=_is_api(path)))
    }
    assert problems == {}, "wrap these in gettext (_) / gettext_lazy"


def test_the_python_check_finds_plain_strings_and_ignores_marked_ones():
    source = (
        "messages.success(request, f'Team {name} created.')\n"
        "forms.CharField(label='Team name')\n"
        "raise forms.ValidationError('Too big: ' + size)\n"
        "field.help_text = 'Shown to all.'\n"
        "messages.error(request, _('Choose a team.'))\n"
        "forms.CharField(label=_('Team name'), help_text=text)\n"
        "messages.info(request, _('%(n)s left') % {'n': n})\n"
        "HttpResponse(out.getvalue(), content_type='text/csv')\n"
    )
    assert unmarked_strings(source) == [
        (1, "success"),
        (2, "CharField"),
        (3, "ValidationError"),
        (4, "help_text"),
    ]


def test_the_python_check_covers_refusals_problems_and_api_errors():
    source = (
        "raise AccessDenied(f'Only {who} may do this.')\n"
        "raise SubmissionRefused('The file is empty.', field='file')\n"
        "problems.append(Problem('is required.', file=name))\n"
        "return Response({'detail': 'No round is open.'}, status=404)\n"
        "self.report('error', path, 'must be text.')\n"
        "raise AccessDenied(_('Only hosts may do this.'))\n"
        "raise QuotaExceeded('per_day', _('Quota reached.'), resets_at)\n"
        "self.report('error', 'evaluation_script', message)\n"
        "OpenApiResponse(description='The teams you belong to')\n"
        "serializers.CharField(help_text='The phase codename')\n"
    )
    assert unmarked_strings(source, api=True) == [
        (1, "AccessDenied"),
        (2, "SubmissionRefused"),
        (3, "Problem"),
        (4, "detail"),
        (5, "report"),
    ]
    # Outside the API, a serializer field's help text is shown in a form.
    assert unmarked_strings(source)[-1] == (10, "CharField")


def test_the_python_check_covers_team_forum_webhook_and_sign_in_refusals():
    source = (
        "raise ParticipationError(f'The team {name!r} is full.')\n"
        "raise MergeRefused('A team cannot merge with itself.')\n"
        "raise WebhookRefused('The team does not take part.')\n"
        "raise ForumRefused('This thread is locked.')\n"
        "raise IdentityRefused('This site is closed.')\n"
        "raise JSONLimitError('JSON nested too deeply')\n"
        "require_team_member(user, team, 'Only members can do this.')\n"
        "raise MergeRefused(_('A team cannot merge with itself.'))\n"
        "raise ForumRefused(_('%(n)d posts') % {'n': n})\n"
    )
    assert [name for _, name in unmarked_strings(source)] == [
        "ParticipationError",
        "MergeRefused",
        "WebhookRefused",
        "ForumRefused",
        "IdentityRefused",
        "JSONLimitError",
        "require_team_member",
    ]


def _msgfmt_statistics(po: Path) -> str:
    answer = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", os.devnull, str(po)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    return answer.stderr.strip()


@pytest.mark.parametrize("po", catalogues(), ids=lambda p: p.parent.parent.name)
def test_the_catalogue_is_complete(po):
    assert shutil.which("msgfmt"), "gettext's msgfmt is needed (apt-get install gettext)"
    statistics = _msgfmt_statistics(po)
    assert re.fullmatch(r"\d+ translated messages?\.", statistics), statistics


@pytest.mark.parametrize("po", catalogues(), ids=lambda p: p.parent.parent.name)
def test_the_committed_mo_is_the_compiled_po(po, tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(po)], check=True)
    with fresh.open("rb") as a, po.with_suffix(".mo").open("rb") as b:
        compiled, committed = gettext.GNUTranslations(a), gettext.GNUTranslations(b)
    assert committed._catalog == compiled._catalog, "run `manage.py translations --compile-only`"


def test_the_catalogue_has_every_marked_string(tmp_path):
    """Extract the strings again, in a copy of the sources with the committed catalogues:
    anything new comes out untranslated (or fuzzy, if gettext guessed from a near one)."""
    for name in ("evalserver", "challenges", "workers", "frontend", "locale"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "manage.py", tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "DEBUG": "true"}
    answer = subprocess.run(
        [sys.executable, "manage.py", "makemessages", *makemessages_arguments(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert answer.returncode == 0, answer.stderr
    for po in catalogues(tmp_path):
        statistics = _msgfmt_statistics(po)
        assert re.fullmatch(r"\d+ translated messages?\.", statistics), (
            f"{statistics}: run `manage.py translations` and translate the new entries"
        )
