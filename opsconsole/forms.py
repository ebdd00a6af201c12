from allauth.account import forms as allauth_forms
from django import forms

from .models import User
from .pickers import Picker


class ProfileForm(forms.ModelForm):
    # No e-mail field: a new address must be proven first (allauth's "Email
    # addresses" page sends a verification link; ACCOUNT_CHANGE_EMAIL).
    class Meta:
        model = User
        fields = ["first_name", "last_name", "timezone"]


class ApiTokenForm(forms.Form):
    owner = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"), widget=Picker("people")
    )
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. 'chatops bot'.")


class LoginForm(allauth_forms.LoginForm):
    """allauth's sign-in form with labels that say what is accepted."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Username or email"
        self.fields["login"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["remember"].label = "Keep me signed in"
