"""Forms for reviews. Validation of rules lives in the services; forms only
turn posted strings into typed values and name bad fields."""

from django import forms
from django.apps import apps

from opsconsole.models import Service

from ..selectors import assignable_users
from .models import COMMENT_MAX_LENGTH, SECTION_MAX_LENGTH, SECTIONS, ActionStatus, Priority
from .trends import DEFAULT_WEEKS, PERIODS


class SectionsForm(forms.Form):
    """Every section's Markdown and the version the editor loaded."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, label, required in SECTIONS:
            self.fields[name] = forms.CharField(
                label=label + (" (required)" if required else ""),
                required=False,
                max_length=SECTION_MAX_LENGTH,
                widget=forms.Textarea(attrs={"rows": 5, "data-section": name}),
            )

    def sections(self) -> dict:
        return {name: self.cleaned_data.get(name, "") for name, _, _ in SECTIONS}


class CorrectionForm(SectionsForm):
    reason = forms.CharField(max_length=300, label="What the correction fixes")


class CommentForm(forms.Form):
    section = forms.ChoiceField(choices=[(n, label) for n, label, _ in SECTIONS])
    text = forms.CharField(max_length=COMMENT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2}), label="Comment")


class RequestChangesForm(forms.Form):
    section = forms.ChoiceField(choices=[(n, label) for n, label, _ in SECTIONS], initial="summary")
    reason = forms.CharField(max_length=2_000, widget=forms.Textarea(attrs={"rows": 2}), label="What needs to change")


class EventSelectForm(forms.Form):
    event = forms.IntegerField(min_value=1)
    selected = forms.BooleanField(required=False)


class ActionItemForm(forms.Form):
    title = forms.CharField(max_length=300)
    owner = forms.ModelChoiceField(queryset=None, required=False)
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int, initial=Priority.P3)
    status = forms.ChoiceField(choices=ActionStatus.choices, initial=ActionStatus.OPEN)
    wont_do_reason = forms.CharField(max_length=500, required=False, label="Reason (won't do)")
    tracker_url = forms.CharField(max_length=500, required=False, label="Tracker link (http/https)")
    runbook = forms.ModelChoiceField(queryset=None, required=False, label="Runbook it changes")
    checklist_template = forms.ModelChoiceField(queryset=None, required=False, label="Checklist it changes")
    change_url = forms.CharField(max_length=500, required=False, label="Other page it changes (link)")
    version = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = assignable_users()
        # The checklists and runbooks apps sit above incidents: reach their models by name, never by import.
        self.fields["runbook"].queryset = apps.get_model("runbooks", "Runbook").objects.only("id", "title")
        self.fields["checklist_template"].queryset = apps.get_model("checklists", "ChecklistTemplate").objects.all()

    def item_data(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("version", None)
        return data


class ReassignForm(forms.Form):
    author = forms.ModelChoiceField(queryset=None)
    due_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["author"].queryset = assignable_users()


class TrendFilterForm(forms.Form):
    weeks = forms.TypedChoiceField(
        choices=list(PERIODS.items()), coerce=int, required=False, initial=DEFAULT_WEEKS, label="Period"
    )
    service = forms.ModelChoiceField(
        queryset=Service.objects.order_by("name"), to_field_name="slug", required=False, empty_label="All services"
    )

    def values(self) -> tuple[int, str]:
        if not self.is_valid():
            return DEFAULT_WEEKS, ""
        service = self.cleaned_data.get("service")
        return self.cleaned_data.get("weeks") or DEFAULT_WEEKS, service.slug if service else ""
