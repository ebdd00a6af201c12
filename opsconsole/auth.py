"""django-allauth adapters: sign-up is closed unless OPEN_SIGNUP is set, and
every account made by sign-up or single sign-on starts as a Viewer."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings


def _make_viewer(user) -> None:
    from django.contrib.auth.models import Group

    from .roles import Role

    group, _ = Group.objects.get_or_create(name=Role.VIEWER.value)
    user.groups.add(group)


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # Say what to do, not only what happened (ACCOUNT_RATE_LIMITS["login_failed"]).
        "too_many_login_attempts": "Too many failed sign-in attempts. "
        "Please wait a few minutes, then try again.",
    }

    def is_open_for_signup(self, request) -> bool:
        return settings.OPEN_SIGNUP

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit)
        if commit:
            _make_viewer(user)
        return user


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        # Single sign-on creates the account on first login: the identity
        # provider decides who may sign in. New users start as Viewers.
        return True

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form)
        _make_viewer(user)
        return user
