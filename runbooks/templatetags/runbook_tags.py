from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    """Markdown to sanitised HTML (the incidents renderer: nh3 removes anything active)."""
    from incidents.services import render_markdown

    return mark_safe(render_markdown(text or ""))  # nosec B308, B703  # sanitised by nh3 (incidents renderer)
