"""The one searchable picker for people and services (hundreds of them): a form
widget and its search endpoint, instead of long selects and Ctrl-click lists.

The widget shows the current choice as checked checkboxes (radios for a single
choice) and a search box; typing asks `/pickers/<source>/?q=` (htmx) for at most
PICKER_LIMIT matches, drawn as more checkboxes/radios with the field's name, so
picking one is simply ticking it and the form posts plain values. The field keeps
its queryset: the server validates every value as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe

from .badinput import as_pk
from .models import Service, User
from .roles import CAPABILITIES

PICKER_LIMIT = 20


@dataclass(frozen=True)
class Source:
    queryset: callable
    fields: tuple[str, ...]

    def search(self, query: str, limit: int = PICKER_LIMIT) -> QuerySet:
        query = query.strip()[:100]
        found = self.queryset()
        if query:
            condition = Q()
            for field in self.fields:
                condition |= Q(**{f"{field}__icontains": query})
            found = found.filter(condition)
        return found[:limit]


def _responders() -> QuerySet:
    """Active people who may hold an incident role (SREs and up)."""
    roles = [role.value for role in CAPABILITIES["incident.note"]]
    return (
        User.objects.filter(Q(groups__name__in=roles) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("username")
    )


SOURCES = {
    "people": Source(
        lambda: User.objects.filter(is_active=True).order_by("username"),
        ("username", "first_name", "last_name", "email"),
    ),
    "responders": Source(_responders, ("username", "first_name", "last_name", "email")),
    "services": Source(lambda: Service.objects.order_by("name"), ("name", "slug")),
}


class Picker(forms.Widget):
    """Picker("people") for a ModelChoiceField, Picker("services", multiple=True)
    for a ModelMultipleChoiceField."""

    template_name = "opsconsole/widgets/picker.html"
    # {pk: object} already read by the page (e.g. once for a whole formset): the
    # chosen ones are drawn from it instead of one query per widget.
    known: dict | None = None

    def __init__(self, source: str, *, multiple: bool = False, attrs=None):
        if source not in SOURCES:
            raise KeyError(source)
        self.source, self.multiple = source, multiple
        super().__init__(attrs)

    def _render(self, template_name, context, renderer=None):
        # The project's templates (the default form renderer only sees Django's own).
        return mark_safe(render_to_string(template_name, context))  # nosec B308 B703 - a template, autoescaped

    def value_from_datadict(self, data, files, name):
        if self.multiple:
            return [v for v in data.getlist(name) if v] if hasattr(data, "getlist") else data.get(name)
        return data.get(name)

    def value_omitted_from_data(self, data, files, name) -> bool:
        return False  # an unticked picker means "nobody", not "unchanged"

    def format_value(self, value) -> list[str]:
        if value in (None, ""):
            return []
        values = value if isinstance(value, list | tuple | set) else [value]
        return [str(getattr(v, "pk", v)) for v in values if v not in (None, "")]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        chosen = [pk for pk in map(as_pk, context["widget"]["value"]) if pk is not None]
        if self.known is not None:
            selected = [self.known[pk] for pk in chosen if pk in self.known]
        else:
            model = SOURCES[self.source].queryset().model
            selected = list(model.objects.filter(pk__in=chosen)) if chosen else []  # one query, only with a choice
        context["widget"].update(
            {
                "selected": selected,
                "multiple": self.multiple,
                "search_url": reverse("picker", args=[self.source]),
                "input_type": "checkbox" if self.multiple else "radio",
            }
        )
        return context
