"""`{{ text|markdown }}`: the timeline notes' sanitised Markdown, for other texts
(the incident summary) so that they render the same way."""

from django import template
from django.utils.safestring import SafeString, mark_safe

from incidents.services.rendering import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    # render_markdown cleans with nh3 (no script, images or inline styles): safe to mark.
    return mark_safe(render_markdown(text))  # nosec B308 B703 - sanitised by nh3 above
