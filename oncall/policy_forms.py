"""The escalation policy form: the policy's own fields plus a formset of levels,
one row per level (name, wait, rotation and/or people), reordered by their
"Order" numbers, removed with "Remove", added in the blank rows.

Choices (rotations, people) are read once per page and handed to every row, so
a page with many policies and levels keeps a constant number of queries."""

from django import forms

from opsconsole.models import Service, User

from .models import Rotation

MAX_LEVELS = 20
MAX_WAIT_MINUTES = 7 * 24 * 60


class Choices:
    """Rotations and active people, read once for every form of the page."""

    def __init__(self) -> None:
        self.rotations = {r.pk: r for r in Rotation.objects.order_by("name")}
        self.users = {u.pk: u for u in User.objects.filter(is_active=True).order_by("username")}
        self.services = list(Service.objects.order_by("name"))


class PolicyForm(forms.Form):
    name = forms.CharField(max_length=100)
    is_default = forms.BooleanField(required=False, label="Default policy (services without one)")
    services = forms.TypedMultipleChoiceField(coerce=int, required=False)
    # The policy's version when the form was drawn: a save over someone else's
    # newer one is refused (escalation.policy_save), never a silent overwrite.
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0, required=False)

    def __init__(self, *args, choices: Choices, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._services = {s.pk: s for s in choices.services}
        self.fields["services"].choices = [(s.pk, s.name) for s in choices.services]

    def clean_services(self) -> list:
        return [self._services[pk] for pk in self.cleaned_data["services"]]


class LevelForm(forms.Form):
    name = forms.CharField(max_length=100, label="Level name")
    wait_minutes = forms.IntegerField(
        min_value=1,
        max_value=MAX_WAIT_MINUTES,
        label="Wait (minutes)",
        help_text="Before the next level is paged.",
    )
    rotation = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Rotation on call")
    users = forms.TypedMultipleChoiceField(coerce=int, required=False, label="People")

    def __init__(self, *args, choices: Choices, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._choices = choices
        self.fields["rotation"].choices = [("", "— none —")] + [(r.pk, r.name) for r in choices.rotations.values()]
        self.fields["users"].choices = [(u.pk, u.get_username()) for u in choices.users.values()]

    def clean(self) -> dict:
        data = super().clean()
        rotation_id = data.get("rotation")
        data["rotation"] = self._choices.rotations.get(rotation_id) if rotation_id else None
        data["users"] = [self._choices.users[pk] for pk in data.get("users") or []]
        if "rotation" not in self.errors and "users" not in self.errors and not data["rotation"] and not data["users"]:
            raise forms.ValidationError("Name a rotation or people to page.")
        return data


class BaseLevelFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        # A tampered management form is already a non-form error; there are no rows to order.
        if any(self.errors) or not self.management_form.is_valid():
            return
        if not self.levels():
            raise forms.ValidationError("A policy needs at least one level.")

    def levels(self) -> list[dict]:
        """The kept rows in their new order (the "Order" numbers; blank last)."""
        return [
            {key: form.cleaned_data[key] for key in ("name", "wait_minutes", "rotation", "users")}
            for form in self.ordered_forms
        ]


LevelFormSet = forms.formset_factory(
    LevelForm,
    formset=BaseLevelFormSet,
    extra=2,
    can_order=True,
    can_delete=True,
    max_num=MAX_LEVELS,
    validate_max=True,
    absolute_max=MAX_LEVELS + 5,
)


def policy_forms(*, choices: Choices, policy=None, data=None) -> tuple[PolicyForm, LevelFormSet]:
    """The policy form and its levels formset, bound to `data` or drawn from `policy`."""
    prefix = f"p{policy.pk}" if policy is not None else "pnew"
    if data is not None:
        form = PolicyForm(data, choices=choices, prefix=prefix)
        formset = LevelFormSet(data, prefix=f"{prefix}-levels", form_kwargs={"choices": choices})
        return form, formset
    initial, rows = None, []
    if policy is not None:
        initial = {
            "name": policy.name,
            "is_default": policy.is_default,
            "services": [s.pk for s in policy.services.all()],
            "version": policy.version,
        }
        rows = [
            {
                "name": level.name,
                "wait_minutes": level.wait_minutes,
                "rotation": level.rotation_id,
                "users": [u.pk for u in level.users.all()],
                "ORDER": level.position,
            }
            for level in policy.levels.all()
        ]
    form = PolicyForm(initial=initial, choices=choices, prefix=prefix)
    formset = LevelFormSet(initial=rows, prefix=f"{prefix}-levels", form_kwargs={"choices": choices})
    return form, formset
