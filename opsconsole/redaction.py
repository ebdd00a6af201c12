"""Secrets inside URLs: how a webhook URL is shown, and scrubbing it from text.

A Slack-style webhook URL is a credential (anyone holding it can post), so
pages, messages, the audit log and logs show only its scheme, host and first
path segment. Error texts from HTTP clients quote the URL they called:
`redact` replaces it before such a text is stored or logged.
"""

from urllib.parse import quote, urlsplit


def display_url(url: str) -> str:
    """https://hooks.slack.com/services/T0/B0/secret → https://hooks.slack.com/services/…"""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    first = parts.path.strip("/").split("/", 1)[0]
    hidden = parts.path.strip("/") != first or parts.query or parts.fragment
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}/{first}{'/…' if hidden else ''}"


def redact(text: str, url: str) -> str:
    """`text` with every spelling of `url` (and of its secret path) replaced by display_url."""
    if not text or not url:
        return text
    shown = display_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return text.replace(url, shown)
    secret_tail = parts.path + (f"?{parts.query}" if parts.query else "")
    for spelling in sorted({url, quote(url, safe=":/?&=%"), url.rstrip("/")}, key=len, reverse=True):
        text = text.replace(spelling, shown)
    if len(secret_tail.strip("/")) > len(urlsplit(shown).path.strip("/…")) + 1:
        text = text.replace(secret_tail, "/…")
    return text
