"""Markdown → safe HTML for timeline events and summaries."""

import markdown
import nh3

_MD_TAGS = set(nh3.ALLOWED_TAGS) - {"img", "area", "map"}


def render_markdown(text: str) -> str:
    """Markdown → HTML that is safe to show (no script, no images, no inline styles)."""
    html = markdown.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists", "nl2br"])
    return nh3.clean(
        html,
        tags=_MD_TAGS,
        link_rel="noopener noreferrer nofollow",
        url_schemes={"http", "https", "mailto"},
    )
