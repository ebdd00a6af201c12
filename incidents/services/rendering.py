"""Markdown → safe HTML for timeline events and summaries."""

import threading

import markdown
import nh3

_MD_TAGS = set(nh3.ALLOWED_TAGS) - {"img", "area", "map"}
_EXTENSIONS = ["fenced_code", "tables", "sane_lists", "nl2br"]
_local = threading.local()


def _converter() -> markdown.Markdown:
    """One Markdown instance per thread, reset before each use: building one
    (extensions, pattern registries) cost more than converting a short text,
    and an instance is not safe to share between threads."""
    md = getattr(_local, "md", None)
    if md is None:
        md = _local.md = markdown.Markdown(extensions=_EXTENSIONS)
    return md


def render_markdown(text: str) -> str:
    """Markdown → HTML that is safe to show (no script, no images, no inline styles)."""
    md = _converter()
    try:
        html = md.reset().convert(text or "")
    except Exception:
        _local.md = None  # a failure may leave state behind: start the next one afresh
        raise
    return sanitise_html(html)


def sanitise_html(html: str) -> str:
    """HTML that is safe to show: what render_markdown returns, also applied
    to HTML a caller composed itself (Alertmanager's alert lists)."""
    return nh3.clean(
        html,
        tags=_MD_TAGS,
        link_rel="noopener noreferrer nofollow",
        url_schemes={"http", "https", "mailto"},
    )
