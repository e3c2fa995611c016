"""Posts are Markdown rendered by markdown-it-py and sanitised by nh3: what a stranger
writes never runs in another reader's browser."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from challenges.discussion.markdown import mentioned_usernames, quote_markdown, render_markdown

HOSTILE = {
    "script tag": "<script>alert(1)</script>",
    "script in html block": "<div><script>alert(1)</script></div>",
    "javascript link": "[click](javascript:alert(1))",
    "javascript link, mixed case and spaces": "[click]( JaVaScRiPt:alert(1))",
    "javascript autolink": "<javascript:alert(1)>",
    "vbscript link": "[x](vbscript:msgbox(1))",
    "onerror attribute": '<img src="x" onerror="alert(1)">',
    "onerror in markdown image title": '![a](https://example.org/a.png "x\\" onerror=\\"alert(1))',
    "data image": "![pixel](data:image/png;base64,iVBORw0KGgo=)",
    "data svg image": "![svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "data link": "[x](data:text/html,<script>alert(1)</script>)",
    "iframe": '<iframe src="https://evil.example"></iframe>',
    "style attribute": '<p style="background:url(javascript:alert(1))">x</p>',
    "reference link to javascript": "[x][1]\n\n[1]: javascript:alert(1)",
}


class Elements(HTMLParser):
    """Every element and attribute of rendered HTML, as a browser would read them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: (v or "") for k, v in attrs}))


@pytest.mark.parametrize("name", list(HOSTILE))
def test_it_renders_hostile_markdown_harmless(name):
    html = render_markdown(HOSTILE[name])
    for tag, attrs in Elements(html).tags:
        assert tag in {"p", "a", "img", "div", "code", "pre"}, (tag, html)
        assert not [a for a in attrs if a.startswith("on") or a == "style"], (attrs, html)
        for attr in ("href", "src"):
            url = attrs.get(attr, "").strip().lower()
            assert not url or url.startswith(("https:", "http:", "mailto:", "/", "#")), html


def test_a_data_image_is_shown_as_its_alt_text():
    assert "pixel" in render_markdown("![pixel](data:image/png;base64,iVBORw0KGgo=)")


def test_it_keeps_code_blocks_links_and_images_by_url():
    html = render_markdown(
        "Try `x = 1` and\n\n```python\nprint('<b>')\n```\n\n"
        "[docs](https://example.org/docs) ![plot](https://example.org/plot.png)"
    )
    assert "<code>x = 1</code>" in html
    assert '<pre><code class="language-python">print(&#39;&lt;b&gt;&#39;)' in html or (
        "<pre><code" in html and "&lt;b&gt;" in html
    )
    assert (
        '<a href="https://example.org/docs" rel="noopener noreferrer nofollow ugc">docs</a>' in html
    )
    assert '<img src="https://example.org/plot.png" alt="plot">' in html


def test_quoting_names_the_author_and_quotes_every_line():
    assert quote_markdown("charlie", "one\ntwo") == "> **@charlie**:\n> one\n> two\n\n"


def test_mentions_are_found_outside_code_only():
    text = "Thanks @alice and @bob.\n\n```\n@decorator\n```\nand `@inline` and mail x@example.org"
    assert mentioned_usernames(text) == {"alice", "bob"}
