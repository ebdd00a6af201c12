import json

from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    """Markdown to sanitised HTML (the incidents renderer: nh3 removes anything active)."""
    from incidents.services import render_markdown

    return mark_safe(render_markdown(text or ""))  # nosec B308, B703  # sanitised by nh3 (incidents renderer)


@register.filter
def action_params(params) -> str:
    """An action's parameters as `name=value, …` (JSON for lists and objects),
    not a Python dict's repr."""
    if not isinstance(params, dict):
        return str(params or "")
    return ", ".join(
        f"{name}={value if isinstance(value, str) else json.dumps(value)}" for name, value in params.items()
    )
