"""Forms of the Users page (opsconsole/user_views.py)."""

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator

from .roles import ROLE_ORDER, Role

ROLE_CHOICES = [(role.value, role.value) for role in ROLE_ORDER]


class RolesField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        super().__init__(choices=ROLE_CHOICES, required=False, label="Roles", **kwargs)

    def clean(self, value) -> list[Role]:
        return [Role(name) for name in super().clean(value)]


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = forms.EmailField(max_length=254, label="E-mail")
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    roles = RolesField(help_text="Viewer reads everything; see the roles matrix for the rest.")


class RolesForm(forms.Form):
    roles = RolesField()
