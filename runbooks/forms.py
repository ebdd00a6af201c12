import json

from django import forms
from django.forms import formset_factory

from opsconsole.models import Service

from .actions import ACTION_CHOICES


def json_object(raw: str) -> dict:
    """An action's parameters typed as JSON: an object, or {} when blank."""
    raw = raw.strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise forms.ValidationError(f"Not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise forms.ValidationError("Give a JSON object ({...}).")
    return value


class RunbookForm(forms.Form):
    title = forms.CharField(max_length=200)
    symptoms = forms.CharField(
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Symptoms / when to use",
        help_text="Markdown.",
    )
    services = forms.ModelMultipleChoiceField(queryset=Service.objects.order_by("name"), required=False)
    tags = forms.CharField(required=False, max_length=500, help_text="Comma-separated, e.g. queue, kubernetes.")
    change_note = forms.CharField(required=False, max_length=300, help_text="What changed in this version.")
    base_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def tag_list(self) -> list[str]:
        return [t for t in self.cleaned_data["tags"].split(",") if t.strip()]


class StepForm(forms.Form):
    title = forms.CharField(max_length=300)
    instructions = forms.CharField(required=False, max_length=50000, widget=forms.Textarea(attrs={"rows": 3}))
    command = forms.CharField(required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 2}))
    action = forms.ChoiceField(choices=ACTION_CHOICES, required=False)
    action_params = forms.CharField(
        required=False,
        max_length=5000,
        label="Action parameters (JSON)",
        help_text='Defaults offered when the step is run, e.g. {"namespace": "prod", "deployment": "worker"}.',
    )

    def clean_action_params(self) -> dict:
        return json_object(self.cleaned_data["action_params"])


StepFormSet = formset_factory(StepForm, extra=2, can_delete=True, max_num=500, validate_max=True)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A Markdown document (.md or .txt).")
    dry_run = forms.BooleanField(required=False, label="Only show what would be imported")


class StartForm(forms.Form):
    incident = forms.CharField(required=False, max_length=24, help_text="Incident reference (INC-…), optional.")
    check_id = forms.IntegerField(required=False, widget=forms.HiddenInput)


class StepMarkForm(forms.Form):
    state = forms.ChoiceField(choices=[("done", "Done"), ("skipped", "Skipped"), ("failed", "Failed")])
    note = forms.CharField(required=False, max_length=1000)

    def clean(self):
        data = super().clean()
        if data.get("state") in ("skipped", "failed") and not data.get("note", "").strip():
            raise forms.ValidationError("Say why: a skipped step needs a reason, a failed one a note.")
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


class OverrideForm(forms.Form):
    reason = forms.CharField(max_length=500, min_length=10, help_text="Why this cannot wait for a second person.")


class RemediationForm(forms.Form):
    """A check's automatic action. The service validates the parameters with the
    action's own form (and the allowlist); its errors land on these fields."""

    action = forms.ChoiceField(choices=[c for c in ACTION_CHOICES if c[0]])
    params = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Parameters (JSON)",
        help_text='e.g. {"namespace": "prod", "deployment": "crm-worker", "replicas": 5}',
    )
    cooldown_seconds = forms.IntegerField(min_value=0, max_value=7 * 86400, initial=900, label="Cooldown (seconds)")
    max_per_hour = forms.IntegerField(min_value=1, max_value=60, initial=2, label="At most per hour")
    enabled = forms.BooleanField(required=False, initial=True)
    preapprove = forms.BooleanField(
        required=False,
        label="Pre-approve (Managers)",
        help_text="A destructive action runs by itself only with a Manager's pre-approval.",
    )

    def clean_params(self) -> dict:
        return json_object(self.cleaned_data["params"])
