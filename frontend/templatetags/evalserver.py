import json
import re

from django import template
from django.utils.safestring import mark_safe

from challenges.html_safe import sanitize_html

register = template.Library()


@register.filter
def sanitize(html: str) -> str:
    """Bundle HTML (descriptions, terms) with scripts, handlers and unsafe URLs removed."""
    return mark_safe(sanitize_html(html))  # noqa: S308


@register.filter
def opens_with_heading(html: str) -> bool:
    """Whether bundle HTML starts with its own heading (then the page adds none)."""
    return bool(re.match(r"\s*<h[1-3][\s>]", html or "", re.IGNORECASE))


@register.filter
def participant_failure(message: str) -> str:
    """A failure message as its team may read it (challenges.failure_text decides)."""
    from challenges.failure_text import participant_failure_text

    return participant_failure_text(message or "")


@register.filter
def label(value, kind: str) -> str:
    """The translated word for a stored value (frontend.labels): `s.status|label:"submission_status"`."""
    from frontend.labels import label as label_of

    return label_of(kind, value)


@register.filter
def as_rows(value) -> list[tuple[str, str]]:
    """What evaluate() returned for people to read (`submission_result`, metadata) as
    (key, value) rows: nested keys joined with " / ", a one-key dict in a list (EvalAI's
    `[{split: {...}}]`) read as its key, numbers and text as they are, no Python repr."""
    rows: list[tuple[str, str]] = []

    def walk(path: list[str], item) -> None:
        if isinstance(item, dict) and item:
            for key, inner in item.items():
                walk([*path, str(key)], inner)
        elif isinstance(item, list) and item and len(rows) < 500:
            for index, inner in enumerate(item):
                keyed = isinstance(inner, dict) and len(inner) == 1
                walk(path if keyed else [*path, f"[{index}]"], inner)
        elif len(rows) < 500:  # bounded: a script may return anything
            shown = "" if item is None else item
            if isinstance(item, bool | list | dict):
                shown = json.dumps(item)
            rows.append((" / ".join(path), str(shown)))

    walk([], value)
    return rows


@register.filter
def markdown(text: str) -> str:
    """A forum post's Markdown as sanitised HTML (challenges.discussion.markdown)."""
    from challenges.discussion.markdown import render_markdown

    return mark_safe(render_markdown(text or ""))  # noqa: S308  (sanitised by challenges.html_safe)
