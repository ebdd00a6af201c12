from django import forms

from opsconsole.models import User


class ShiftForm(forms.Form):
    """Add a shift to one rotation. Times are entered in the viewer's timezone
    (the active one, set by UserTimezoneMiddleware) and stored in UTC."""

    user = forms.TypedChoiceField(coerce=int, label="Who")
    starts_at = forms.DateTimeField(
        label="Starts",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    ends_at = forms.DateTimeField(
        label="Ends",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, user_choices: list[tuple[int, str]], **kwargs) -> None:
        # Choices are built once per page (not one query per rotation's form).
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [("", "— choose —"), *user_choices]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            self.add_error("ends_at", "The shift must end after it starts.")
        if data.get("user"):
            data["user"] = User.objects.filter(pk=data["user"], is_active=True).first()
            if data["user"] is None:
                self.add_error("user", "That user no longer exists or is inactive.")
        return data


def user_choices() -> list[tuple[int, str]]:
    """Active users, for the shift forms of a page (one query)."""
    users = User.objects.filter(is_active=True).order_by("username")
    return [(user.pk, f"{user} ({user.username})" if str(user) != user.username else user.username) for user in users]
