import re

import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def sanitize(html: str) -> str:
    """Bundle HTML (descriptions, terms) with scripts, handlers and unsafe URLs removed."""
    return mark_safe(nh3.clean(html or "", link_rel="noopener noreferrer nofollow"))  # noqa: S308


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
def markdown(text: str) -> str:
    """A forum post's Markdown as sanitised HTML (challenges.discussion.markdown)."""
    from challenges.discussion.markdown import render_markdown

    return mark_safe(render_markdown(text or ""))  # noqa: S308  (sanitised by nh3)
