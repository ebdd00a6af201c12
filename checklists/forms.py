import datetime

from django import forms
from django.forms import inlineformset_factory

from healthchecks.models import Check
from runbooks.models import Runbook

from .models import (
    EVIDENCE_MAX_LENGTH,
    NA_REASON_MAX_LENGTH,
    NOTE_MAX_LENGTH,
    WEEKDAY_NAMES,
    ChecklistTemplate,
    Schedule,
    TemplateItem,
)


class StartRunForm(forms.Form):
    template = forms.ModelChoiceField(queryset=ChecklistTemplate.objects.filter(is_active=True).order_by("name"))
    due_within_hours = forms.DecimalField(
        min_value=0.25, max_value=72, initial=4, decimal_places=2, label="Due within (hours)"
    )

    def due_within(self) -> datetime.timedelta:
        return datetime.timedelta(hours=float(self.cleaned_data["due_within_hours"]))


def _length_message(what: str, limit: int) -> str:
    return f"{what} is limited to {limit} characters (this one has %(show_value)d)."


class NaForm(forms.Form):
    reason = forms.CharField(
        max_length=NA_REASON_MAX_LENGTH,
        label="Why does it not apply?",
        error_messages={
            "required": "Say why this item does not apply.",
            "max_length": _length_message("The reason", NA_REASON_MAX_LENGTH),
        },
    )

    def reason_error(self) -> str:
        return " ".join(self.errors.get("reason", [])) or "Say why this item does not apply."


class NoteForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"max_length": _length_message("The note", NOTE_MAX_LENGTH)},
    )
    evidence = forms.CharField(
        required=False,
        max_length=EVIDENCE_MAX_LENGTH,
        help_text="Text or a link (dashboard, ticket, log query).",
        error_messages={"max_length": _length_message("The evidence", EVIDENCE_MAX_LENGTH)},
    )
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def error_text(self) -> str:
        if "version" in self.errors:
            return "The form was out of date: reload the page and save again."
        return " ".join(message for field in ("note", "evidence") for message in self.errors.get(field, []))


class TemplateForm(forms.ModelForm):
    class Meta:
        model = ChecklistTemplate
        fields = ["name", "description", "offers_handoff", "is_active"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class TemplateItemForm(forms.ModelForm):
    class Meta:
        model = TemplateItem
        fields = [
            "order",
            "section",
            "text",
            "help",
            "required",
            "runbook",
            "runbook_url",
            "expected_evidence",
            "health_check",
        ]
        widgets = {"help": forms.Textarea(attrs={"rows": 2})}


# The choices read "service / check": load each check's service in the same query.
TemplateItemForm.base_fields["health_check"].queryset = Check.objects.select_related("service")
# Saved runbooks only (an import in progress has none without a version).
TemplateItemForm.base_fields["runbook"].queryset = Runbook.objects.filter(current_version__isnull=False).only(
    "id", "title"
)


class ScheduleForm(forms.ModelForm):
    days = forms.MultipleChoiceField(
        choices=[(str(i), name) for i, name in enumerate(WEEKDAY_NAMES)],
        widget=forms.CheckboxSelectMultiple,
        initial=["0", "1", "2", "3", "4"],
    )
    due_within_minutes = forms.IntegerField(min_value=5, max_value=7 * 24 * 60, initial=120)

    class Meta:
        model = Schedule
        fields = ["time_of_day", "timezone", "enabled"]
        widgets = {"time_of_day": forms.TimeInput(attrs={"type": "time"}, format="%H:%M")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["days"] = list(self.instance.days_of_week)
            self.initial["due_within_minutes"] = int(self.instance.due_within.total_seconds() // 60)

    def save(self, commit: bool = True) -> Schedule:
        self.instance.days_of_week = "".join(sorted(self.cleaned_data["days"]))
        self.instance.due_within = datetime.timedelta(minutes=self.cleaned_data["due_within_minutes"])
        return super().save(commit)


class _SharedChoicesFormSet(forms.BaseInlineFormSet):
    """Evaluates each choice field's queryset once for all forms: a formset
    of 40 items must not run 40 queries for the health-check dropdown."""

    shared_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.shared_fields:
            field = self.form.base_fields[name]
            choices = list(field.choices)
            for form in self.forms + [self.empty_form]:
                form.fields[name].choices = choices


class ItemFormSet(_SharedChoicesFormSet):
    shared_fields = ("health_check", "runbook")


class ScheduleFormSet(_SharedChoicesFormSet):
    shared_fields = ()


TemplateItemFormSet = inlineformset_factory(
    ChecklistTemplate,
    TemplateItem,
    form=TemplateItemForm,
    formset=ItemFormSet,
    extra=3,
    can_delete=True,
)
ScheduleInlineFormSet = inlineformset_factory(
    ChecklistTemplate,
    Schedule,
    form=ScheduleForm,
    formset=ScheduleFormSet,
    extra=1,
    can_delete=True,
)
