"""Bundle HTML (descriptions, evaluation details, terms, guidelines) as anyone may be
shown it: nh3 removes scripts, event handlers and unsafe URLs. The pages (the `sanitize`
filter) and every API that returns such a field call this one function, so an API client
that renders the HTML gets what the pages show."""

from __future__ import annotations

import nh3


def sanitize_html(html: str | None) -> str:
    return nh3.clean(html or "", link_rel="noopener noreferrer nofollow")
