"""Markdown to safe HTML for posts: markdown-it-py (CommonMark, raw HTML off) and then the
project's sanitiser (challenges.html_safe) with a short allow-list. Pure: no ORM.

Two locks, either of which is enough on its own: the parser escapes any HTML a post holds
and refuses links whose scheme is not http(s) or mailto; nh3 then drops any tag, attribute
or URL scheme outside the allow-list. Images are by URL only (http or https): a data: image
is refused (it hides content from moderation and can carry SVG script)."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from challenges.html_safe import sanitize_html

LINK_SCHEMES = {"http", "https", "mailto"}
IMAGE_SCHEMES = {"http", "https"}
TAGS = {
    "a", "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "img",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*):")
MENTION = re.compile(r"(?<![\w@/])@([A-Za-z0-9_.+-]{1,150})")


def _scheme(url: str) -> str | None:
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else None


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )

    def validate_link(url: str) -> bool:
        scheme = _scheme(url)
        # A relative link (no scheme) stays on this site; anything else must be listed.
        return scheme is None or scheme in LINK_SCHEMES

    md.validateLink = validate_link
    default_image = md.renderer.rules.get("image")

    def image(renderer, tokens, idx, options, env):
        src = tokens[idx].attrGet("src") or ""
        if _scheme(src) not in IMAGE_SCHEMES:
            # Shown as its alt text: the reader sees what was meant, never the data.
            return md.renderer.renderInline(tokens[idx].children or [], options, env) or ""
        return default_image(tokens, idx, options, env)

    md.add_render_rule("image", image)
    return md


_MD = _parser()


def render_markdown(text: str) -> str:
    """Safe HTML for a post's Markdown."""
    html = _MD.render(text or "")
    return sanitize_html(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=LINK_SCHEMES,
        link_rel="noopener noreferrer nofollow ugc",
    )


def quote_markdown(author: str, text: str) -> str:
    """`text` as a Markdown quote naming its author, to start a reply with."""
    lines = (text or "").strip().splitlines() or [""]
    return f"> **@{author}**:\n" + "\n".join(f"> {line}" for line in lines) + "\n\n"


def mentioned_usernames(text: str) -> set[str]:
    """The @usernames a post names, outside code (a decorator is not a mention)."""
    without_code = re.sub(r"```.*?```|`[^`]*`", " ", text or "", flags=re.DOTALL)
    return {name.rstrip(".") for name in MENTION.findall(without_code)}
