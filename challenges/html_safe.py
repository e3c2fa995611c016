"""Bundle HTML (descriptions, evaluation details, terms, guidelines) as anyone may be
shown it: nh3 removes scripts, event handlers and unsafe URLs. The pages (the `sanitize`
filter) and every API that returns such a field call this one function, so an API client
that renders the HTML gets what the pages show."""

from __future__ import annotations

import nh3


def sanitize_html(
    html: str | None,
    *,
    tags: set[str] | None = None,
    attributes: dict[str, set[str]] | None = None,
    url_schemes: set[str] | None = None,
    link_rel: str = "noopener noreferrer nofollow",
) -> str:
    """`html` with anything outside the allow-lists removed; the lists default to nh3's,
    a caller with less to show (forum posts) passes shorter ones."""
    return nh3.clean(
        html or "",
        tags=tags,
        attributes=attributes,
        url_schemes=url_schemes,
        link_rel=link_rel,
        strip_comments=True,
    )
