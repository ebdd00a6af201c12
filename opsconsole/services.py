"""Writes of the core app. Each owns its transaction and its audit entry."""

from django.db import transaction
from django.utils import timezone

from . import audit
from .models import ApiToken, User
from .roles import check_capability

# E-mail is changed only through allauth's verification flow (see opsconsole.auth).
PROFILE_FIELDS = ("first_name", "last_name", "timezone")


@transaction.atomic
def user_update_profile(*, user: User, **changes: str) -> User:
    # "before" comes from the database, not `user`: a ModelForm bound to the
    # same instance has already copied the new values onto it.
    before = audit.snapshot(User.objects.select_for_update().get(pk=user.pk), PROFILE_FIELDS)
    for field in PROFILE_FIELDS:
        if field in changes:
            setattr(user, field, changes[field])
    user.save(update_fields=[f for f in PROFILE_FIELDS if f in changes])
    after = audit.snapshot(user, PROFILE_FIELDS)
    if before != after:
        audit.record(user, "user.profile_update", user, before=before, after=after)
    return user


@transaction.atomic
def api_token_create(*, actor: User, owner: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for `owner`; return it with the raw value, shown once only."""
    check_capability(actor, "users.manage")
    raw, prefix, token_hash = ApiToken.generate()
    token = ApiToken.objects.create(user=owner, name=name, prefix=prefix, token_hash=token_hash)
    audit.record(actor, "api_token.create", token, after={"owner": owner.username, "name": name, "prefix": prefix})
    return token, raw


@transaction.atomic
def api_token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    """Idempotent: revoking a revoked token changes nothing and logs nothing."""
    check_capability(actor, "users.manage")
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if updated:
        token.refresh_from_db()
        audit.record(actor, "api_token.revoke", token, after={"prefix": token.prefix})
    return token
