from datetime import datetime, time

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from opsconsole.badinput import DateTimeField
from opsconsole.models import Service
from opsconsole.pickers import Picker

from . import selectors
from .models import EventKind, SeverityLevel, Status


class SeverityChoiceField(forms.ModelChoiceField):
    """SEV radio buttons whose labels carry the definition and examples."""

    widget = forms.RadioSelect

    def label_from_instance(self, obj: SeverityLevel) -> str:
        examples = f" (e.g. {obj.examples})" if obj.examples else ""
        return (
            f"{obj.name} — {obj.definition}{examples}. Acknowledge within "
            f"{_minutes(obj.ack_target_minutes)}, "
            f"resolve within {_minutes(obj.resolve_target_minutes)}."
        )


def _minutes(n: int) -> str:
    if n % 1440 == 0:
        return f"{n // 1440} d"
    return f"{n // 60} h" if n % 60 == 0 else f"{n} min"


class TagsField(forms.CharField):
    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        return sorted({t.strip().lower() for t in text.replace(";", ",").split(",") if t.strip()})

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value


class DeclareForm(forms.Form):
    title = forms.CharField(
        max_length=200,
        widget=forms.TextInput(attrs={"autofocus": True}),
        help_text="What is broken, as users see it.",
    )
    severity = SeverityChoiceField(queryset=SeverityLevel.objects.order_by("level"), empty_label=None)
    i_am_commander = forms.BooleanField(required=False, initial=True, label="I am the incident commander")
    summary = forms.CharField(required=False, label="Summary (Markdown)", widget=forms.Textarea(attrs={"rows": 3}))
    services = forms.ModelMultipleChoiceField(
        queryset=Service.objects.all(), required=False, widget=Picker("services", multiple=True)
    )
    restricted = forms.BooleanField(
        required=False,
        help_text="Security or data breach: only participants, Managers and Admins see it.",
    )


class NoteForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Note (Markdown)", max_length=20000)
    occurred_at = DateTimeField(
        required=False,
        label="Happened at (optional)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Back-date a note; your timezone. The time it was written is kept too.",
    )
    corrects = forms.IntegerField(required=False, widget=forms.HiddenInput)


class DeclareApiForm(DeclareForm):
    """The declare page's form for the JSON API (opsconsole.badinput.form_from_json):
    the same fields and limits; services by slug and a commander by username."""

    i_am_commander = None
    services = forms.ModelMultipleChoiceField(queryset=Service.objects.all(), required=False, to_field_name="slug")
    commander = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), required=False, to_field_name="username"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["commander"].queryset = selectors.assignable_users()


class NoteApiForm(NoteForm):
    """The note form for the JSON API: a back-dated time must carry its offset
    (a script has no "your timezone")."""

    corrects = None

    def clean_occurred_at(self):
        value = self.cleaned_data.get("occurred_at")
        if value is not None:
            try:
                parsed = parse_datetime(str(self.data.get("occurred_at", "")).strip())
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                raise ValidationError("Needs an ISO-8601 date-time with an offset, e.g. 2026-01-15T10:30:00+00:00.")
        return value


class TransitionForm(forms.Form):
    to = forms.ChoiceField(choices=[(s.value, s.label) for s in Status if s != Status.TRIGGERED])
    note = forms.CharField(required=False, max_length=2000)
    confirm_firing = forms.BooleanField(required=False)


class ReopenForm(forms.Form):
    reason = forms.CharField(max_length=500)


class SeverityChangeForm(forms.Form):
    severity = forms.ModelChoiceField(queryset=SeverityLevel.objects.order_by("level"), empty_label=None, label="SEV")
    reason = forms.CharField(
        required=False, max_length=300, widget=forms.TextInput(attrs={"placeholder": "Reason (optional)"})
    )


class RolesForm(forms.Form):
    # Searchable pickers (opsconsole.pickers): hundreds of people, no long selects.
    commander = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), required=False, widget=Picker("responders")
    )
    comms_lead = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        label="Communications lead",
        widget=Picker("responders"),
    )
    responders = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), required=False, widget=Picker("responders", multiple=True)
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = selectors.assignable_users()
        for name in ("commander", "comms_lead", "responders"):
            self.fields[name].queryset = users


class DetailsForm(forms.Form):
    title = forms.CharField(max_length=200)
    summary = forms.CharField(required=False, label="Summary (Markdown)", widget=forms.Textarea(attrs={"rows": 4}))
    customer_impact = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    services = forms.ModelMultipleChoiceField(
        queryset=Service.objects.all(), required=False, widget=Picker("services", multiple=True)
    )
    tags = TagsField(required=False, help_text="Comma-separated, e.g. database, payments.")
    restricted = forms.BooleanField(required=False)


class SeverityLevelForm(forms.ModelForm):
    class Meta:
        model = SeverityLevel
        fields = ["definition", "examples", "ack_target_minutes", "resolve_target_minutes"]

    def clean(self):
        data = super().clean()
        ack, resolve = data.get("ack_target_minutes"), data.get("resolve_target_minutes")
        if ack is not None and ack < 1:
            self.add_error("ack_target_minutes", "At least one minute.")
        if ack and resolve and resolve < ack:
            self.add_error("resolve_target_minutes", "Cannot be shorter than the acknowledge target.")
        return data


class AlertMappingForm(forms.Form):
    label_value = forms.CharField(max_length=50, label="Alert `severity` label value")
    severity = forms.ModelChoiceField(queryset=SeverityLevel.objects.order_by("level"), empty_label=None, label="SEV")


class IncidentFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", widget=forms.SearchInput)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), ("open", "Open")] + list(Status.choices))
    severity = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, choices=[("", "Any SEV")])
    service = forms.ChoiceField(required=False, choices=[("", "Any service")])
    commander = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, choices=[("", "Any commander")])
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    breached = forms.BooleanField(required=False, label="Breached only")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["severity"].choices += [(lvl.level, lvl.name) for lvl in selectors.severity_levels()]
        self.fields["service"].choices += list(Service.objects.values_list("slug", "name"))
        self.fields["commander"].choices += [(u.pk, str(u)) for u in selectors.assignable_users()[:200]]

    def ignored(self) -> list[str]:
        """The filters that could not be applied (an unknown SEV, a misspelt status…),
        named on the page: the list is filtered by the others, and says so."""
        if not self.is_bound or self.is_valid():
            return []
        return [
            f"{self.fields[name].label or name}: “{self.data.get(name, '')}”"
            for name in self.errors
            if name in self.fields
        ]

    def filters(self) -> selectors.IncidentFilters:
        self.is_valid()
        # An invalid field is missing from cleaned_data: it falls back to "any".
        data = {"status": "", "severity": None, "service": "", "commander": None, "q": "", "breached": False}
        data |= {"date_from": None, "date_to": None} | getattr(self, "cleaned_data", {})
        tz = timezone.get_current_timezone()
        start = datetime.combine(data["date_from"], time.min, tzinfo=tz) if data["date_from"] else None
        end = datetime.combine(data["date_to"], time.max, tzinfo=tz) if data["date_to"] else None
        return selectors.IncidentFilters(
            status=data["status"],
            severity=data["severity"],
            service=data["service"],
            commander=data["commander"],
            date_from=start,
            date_to=end,
            q=data["q"],
            breached=data["breached"],
        )


KIND_CHOICES = EventKind.choices
