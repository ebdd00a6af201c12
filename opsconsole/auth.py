"""django-allauth adapters: sign-up is closed unless OPEN_SIGNUP is set."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return settings.OPEN_SIGNUP


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        # Single sign-on creates the account on first login: the identity
        # provider decides who may sign in. New users start as Viewers.
        return True

    def save_user(self, request, sociallogin, form=None):
        from django.contrib.auth.models import Group

        from .roles import Role

        user = super().save_user(request, sociallogin, form)
        group, _ = Group.objects.get_or_create(name=Role.VIEWER.value)
        user.groups.add(group)
        return user
