from django import forms

from .models import User


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "timezone"]


class ApiTokenForm(forms.Form):
    owner = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True).order_by("username"))
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. 'chatops bot'.")
