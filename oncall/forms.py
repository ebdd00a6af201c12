import zoneinfo

from django import forms

from opsconsole.badinput import DateTimeField
from opsconsole.models import TIMEZONE_CHOICES, User

from .models import HANDOFF_MESSAGE_MAX_LENGTH, HANDOFF_SECTION_MAX_LENGTH, Override, ShiftLength

DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class OverrideForm(forms.Form):
    """Someone covers a rotation for a time range (a swap, holiday cover). Times
    are entered in the viewer's timezone (the active one) and stored in UTC."""

    user = forms.TypedChoiceField(coerce=int, label="Who covers")
    starts_at = DateTimeField(label="From", widget=DATETIME_WIDGET)
    ends_at = DateTimeField(label="Until", widget=DATETIME_WIDGET)
    kind = forms.ChoiceField(choices=Override.Kind.choices, initial=Override.Kind.SWAP)
    reason = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, user_choices: list[tuple[int, str]], **kwargs) -> None:
        # Choices are built once per page (not one query per rotation's form).
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [("", "— choose —"), *user_choices]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            self.add_error("ends_at", "The override must end after it starts.")
        if data.get("user"):
            data["user"] = User.objects.filter(pk=data["user"], is_active=True).first()
            if data["user"] is None:
                self.add_error("user", "That user no longer exists or is inactive.")
        return data


class RotationForm(forms.Form):
    shift_length = forms.ChoiceField(choices=ShiftLength.choices)
    custom_hours = forms.IntegerField(min_value=1, max_value=24 * 28, initial=12, help_text="Used when custom.")
    handoff_time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES)
    start_date = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), help_text="The first member's first shift starts this day."
    )
    members = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="Usernames in rotation order, one per line.",
    )

    def clean_timezone(self) -> str:
        value = self.cleaned_data["timezone"]
        if value not in zoneinfo.available_timezones():
            raise forms.ValidationError("Unknown timezone.")
        return value

    def clean_members(self) -> list[int]:
        names = [line.strip() for line in self.cleaned_data["members"].splitlines() if line.strip()]
        if len({n.lower() for n in names}) != len(names):
            raise forms.ValidationError("Each person can be in a rotation once.")
        users = {u.username.lower(): u.pk for u in User.objects.filter(username__in=names, is_active=True)}
        missing = [n for n in names if n.lower() not in users]
        if missing:
            raise forms.ValidationError(f"Unknown or inactive users: {', '.join(missing)}.")
        return [users[n.lower()] for n in names]


def user_choices() -> list[tuple[int, str]]:
    """Active users, for the forms of a page (one query)."""
    users = User.objects.filter(is_active=True).order_by("username")
    return [(user.pk, f"{user} ({user.username})" if str(user) != user.username else user.username) for user in users]


class HandoffForm(forms.Form):
    """The editable parts of a handoff; one notes field and one "closed" box per
    outstanding item of the prefill (keyed like the draft's items)."""

    incoming = forms.TypedChoiceField(coerce=int, label="Handing over to", required=False)
    no_deployments = forms.BooleanField(label="No pending deployments", required=False, initial=True)
    recent_changes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=HANDOFF_SECTION_MAX_LENGTH,
        label="Recent changes",
    )
    known_issues = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=HANDOFF_SECTION_MAX_LENGTH,
        label="Known issues to watch",
    )
    new_items = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=5000,
        label="Other outstanding issues",
        help_text="One per line; they carry over to the next handoff until closed.",
    )

    def __init__(self, *args, items=(), user_choices=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["incoming"].choices = [("", "— the next person on shift —"), *user_choices]
        self.item_keys = [item.key for item in items]
        for item in items:
            self.fields[f"notes_{item.key}"] = forms.CharField(
                required=False,
                max_length=HANDOFF_MESSAGE_MAX_LENGTH,
                initial=item.notes,
                label=f"Notes on {item.title}",
            )
            self.fields[f"closed_{item.key}"] = forms.BooleanField(required=False, label="Closed")

    def clean_incoming(self):
        pk = self.cleaned_data.get("incoming")
        if not pk:
            return None
        user = User.objects.filter(pk=pk, is_active=True).first()
        if user is None:
            raise forms.ValidationError("That user no longer exists or is inactive.")
        return user

    def item_notes(self) -> dict[str, str]:
        return {key: self.cleaned_data.get(f"notes_{key}", "") for key in self.item_keys}

    def closed_keys(self) -> set[str]:
        return {key for key in self.item_keys if self.cleaned_data.get(f"closed_{key}")}


class HandoffAnswerForm(forms.Form):
    action = forms.ChoiceField(choices=[("acknowledge", "Handoff confirmed"), ("question", "Ask a question")])
    confirmations = forms.MultipleChoiceField(
        choices=[], widget=forms.CheckboxSelectMultiple, required=False, label="Confirmed"
    )
    question = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=HANDOFF_MESSAGE_MAX_LENGTH
    )

    def __init__(self, *args, **kwargs) -> None:
        from .handoffs import CONFIRMATIONS

        super().__init__(*args, **kwargs)
        self.fields["confirmations"].choices = CONFIRMATIONS

    def clean(self) -> dict:
        data = super().clean()
        if data.get("action") == "question" and not (data.get("question") or "").strip():
            self.add_error("question", "Write the question.")
        return data


class HandoffReplyForm(forms.Form):
    answer = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=HANDOFF_MESSAGE_MAX_LENGTH,
        label="Your answer",
        error_messages={"required": "Write the answer."},
    )
