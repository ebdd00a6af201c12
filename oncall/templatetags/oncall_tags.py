import datetime

from django import template

register = template.Library()


@register.filter
def from_iso(value: str) -> datetime.datetime | str:
    """A time a handoff stores as ISO text (its snapshot is JSON), back as a
    datetime, so that `|date` shows it in the reader's timezone."""
    try:
        return datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value or ""
