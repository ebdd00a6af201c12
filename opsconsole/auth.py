"""django-allauth adapters: sign-up is closed unless OPEN_SIGNUP is set, and
every account made by sign-up or single sign-on starts as a Viewer."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.signals import email_added, email_changed, user_logged_in
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from . import signin_throttle


def _make_viewer(user) -> None:
    from django.contrib.auth.models import Group

    from .roles import Role

    group, _ = Group.objects.get_or_create(name=Role.VIEWER.value)
    user.groups.add(group)


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # Say what to do, not only what happened (ACCOUNT_RATE_LIMITS["login_failed"]).
        "too_many_login_attempts": "Too many failed sign-in attempts from your address. "
        "Please wait a few minutes, then try again.",
        "login_slowed_down": "Several wrong passwords were tried for this account: "
        "please wait %s seconds, then try again.",
    }

    @staticmethod
    def _login(credentials: dict) -> str:
        return credentials.get("email", credentials.get("username", "")) or ""

    def pre_authenticate(self, request, **credentials) -> None:
        # allauth's per-address limit first, then the per-account slow-down
        # (signin_throttle: slows guessing, never locks the owner out).
        super().pre_authenticate(request, **credentials)
        wait = signin_throttle.wait_seconds(request, self._login(credentials))
        if wait:
            # Not a failed password: this attempt gives back its per-address usage.
            self._rollback_login_failed_rl_usage()
            raise self.validation_error("login_slowed_down", wait)

    def authentication_failed(self, request, **credentials) -> None:
        signin_throttle.record_failure(request, self._login(credentials))

    def is_open_for_signup(self, request) -> bool:
        return settings.OPEN_SIGNUP

    def save_user(self, request, user, form, commit=True):
        user._email_from_signup = True  # typed by the newcomer: allauth verifies it, not trust_address
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
        sociallogin.user._email_from_signup = True  # allauth records the provider's verification
        user = super().save_user(request, sociallogin, form)
        _make_viewer(user)
        return user


@receiver(user_logged_in)
def _trust_this_browser(sender, request, user, response=None, **kwargs) -> None:
    signin_throttle.remember_device(request, response, user)


@receiver(email_added)
def _audit_email_requested(sender, request, user, email_address, **kwargs) -> None:
    from . import audit

    audit.record(user, "user.email_change_requested", user, after={"email": email_address.email})


@receiver(email_changed)
def _audit_email_changed(sender, request, user, from_email_address, to_email_address, **kwargs) -> None:
    from . import audit

    before = {"email": from_email_address.email if from_email_address else ""}
    audit.record(user, "user.email_change", user, before=before, after={"email": to_email_address.email})


def trust_address(user) -> None:
    """An address set by an admin or a seed (never by the user: the profile
    has no e-mail field; sign-up addresses go through allauth's verification)
    is the account's verified primary one.
    Without this, allauth's change-e-mail flow would treat the current
    address as the unconfirmed "new" one and drop it."""
    from allauth.account.models import EmailAddress

    if not user.email or EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists():
        return
    try:
        with transaction.atomic():
            EmailAddress.objects.filter(user=user, primary=True).update(primary=False)
            EmailAddress.objects.update_or_create(
                user=user, email__iexact=user.email, defaults={"email": user.email, "verified": True, "primary": True}
            )
    except IntegrityError:
        # Another account holds this address verified: it stays theirs.
        pass


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _trust_address_set_outside_allauth(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if getattr(instance, "_email_from_signup", False):
        return
    if not raw and (update_fields is None or "email" in update_fields):
        trust_address(instance)
