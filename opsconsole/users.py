"""People management inside the console (Admins: `users.manage`): invite, roles,
deactivate / reactivate, reset two-factor. Each write owns its transaction and
its audit entry; reads keep a constant number of queries."""

from __future__ import annotations

from allauth.account.forms import ResetPasswordForm
from allauth.account.models import EmailAddress
from allauth.core import context as allauth_context
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from . import audit
from .models import User
from .roles import ROLE_ORDER, Role, check_capability

USER_LIST_LIMIT = 50


def user_list(query: str = "") -> QuerySet[User]:
    """Search by username, name or e-mail; groups prefetched (two queries per page)."""
    users = User.objects.prefetch_related("groups").order_by("-is_active", "username")
    query = query.strip()[:100]
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
            | Q(email__icontains=query)
        )
    return users


def roles_of(user: User) -> list[Role]:
    names = {group.name for group in user.groups.all()}
    return [role for role in ROLE_ORDER if role.value in names]


def _groups(roles: list[Role]) -> list[Group]:
    return [Group.objects.get_or_create(name=role.value)[0] for role in roles]


@transaction.atomic
def user_invite(*, actor: User, request: HttpRequest, username: str, email: str, roles: list[Role], **names) -> User:
    """A new account without a password, and an e-mail whose link lets the person
    choose one (allauth's password-reset flow: the link expires, works once)."""
    check_capability(actor, "users.manage")
    if User.objects.filter(Q(username__iexact=username) | Q(email__iexact=email)).exists():
        raise ValidationError("Someone already has that username or e-mail address.")
    user = User(
        username=username, email=email, first_name=names.get("first_name", ""), last_name=names.get("last_name", "")
    )
    user.set_unusable_password()
    user.save()
    user.groups.set(_groups(roles))
    # (the console may already have recorded the address on save: get_or_create)
    EmailAddress.objects.get_or_create(user=user, email=email, defaults={"primary": True, "verified": False})
    audit.record(
        actor, "user.invite", user, after={"username": username, "email": email, "roles": [str(r) for r in roles]}
    )
    # Sent once the account is committed: the link must find it.
    transaction.on_commit(lambda: _send_invitation(request, email))
    return user


def _send_invitation(request: HttpRequest, email: str) -> None:
    # allauth builds the link from the request it finds in its context; on_commit
    # may run after the middleware has left it (tests, nested transactions).
    with allauth_context.request_context(request):
        form = ResetPasswordForm(data={"email": email})
        if form.is_valid():
            form.save(request)


@transaction.atomic
def user_set_roles(*, actor: User, user: User, roles: list[Role]) -> User:
    check_capability(actor, "users.manage")
    user = User.objects.select_for_update().get(pk=user.pk)
    before = [str(r) for r in roles_of(user)]
    if user.pk == actor.pk and Role.ADMIN in roles_of(user) and Role.ADMIN not in roles:
        raise ValidationError("You cannot remove your own Admin role: ask another Admin.")
    user.groups.set(_groups(roles))
    after = [str(r) for r in ROLE_ORDER if r in roles]
    if before != after:
        audit.record(actor, "user.roles", user, before={"roles": before}, after={"roles": after})
    return user


@transaction.atomic
def user_set_active(*, actor: User, user: User, active: bool) -> User:
    """Deactivated people cannot sign in, and their API tokens stop working
    (token authentication requires an active owner)."""
    check_capability(actor, "users.manage")
    if user.pk == actor.pk and not active:
        raise ValidationError("You cannot deactivate your own account.")
    if User.objects.filter(pk=user.pk, is_active=not active).update(is_active=active):
        audit.record(actor, "user.activate" if active else "user.deactivate", user, after={"is_active": active})
    user.refresh_from_db()
    return user


@transaction.atomic
def user_reset_mfa(*, actor: User, user: User) -> int:
    """Remove every second factor (TOTP, recovery codes, WebAuthn keys): the person
    signs in with the password alone and sets two-factor up again."""
    check_capability(actor, "users.manage")
    kinds = sorted(set(Authenticator.objects.filter(user=user).values_list("type", flat=True)))
    removed, _ = Authenticator.objects.filter(user=user).delete()
    if removed:
        audit.record(actor, "user.mfa_reset", user, before={"authenticators": kinds})
    return removed
