import zoneinfo

from django import forms

from opsconsole.models import TIMEZONE_CHOICES, User

from .models import Override, ShiftLength

DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class OverrideForm(forms.Form):
    """Someone covers a rotation for a time range (a swap, holiday cover). Times
    are entered in the viewer's timezone (the active one) and stored in UTC."""

    user = forms.TypedChoiceField(coerce=int, label="Who covers")
    starts_at = forms.DateTimeField(label="From", widget=DATETIME_WIDGET)
    ends_at = forms.DateTimeField(label="Until", widget=DATETIME_WIDGET)
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
