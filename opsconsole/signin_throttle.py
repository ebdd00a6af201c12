"""Per-account sign-in slow-down: wrong passwords make an account slower to
guess, never impossible to enter.

allauth refuses too many failures per address (ACCOUNT_RATE_LIMITS). A hard
per-account limit would let anyone lock an incident commander out by typing
wrong passwords for them, so the per-account rule is a slow-down instead:

- After LOGIN_SLOWDOWN_AFTER failures for an account (within
  LOGIN_SLOWDOWN_WINDOW_SECONDS of the last one), only one attempt is let
  through per delay; the delay doubles with each further failure, from one
  second up to LOGIN_SLOWDOWN_MAX_DELAY_SECONDS. An attempt made while the
  account waits is answered "wait N seconds" without its password being
  checked, and does not count as a failure (it cannot lengthen the wait).
  A correct password is always accepted in the next free slot.
- A browser that signed in to the account before holds a signed device
  cookie for it. Its attempts are counted on their own, so an attacker's
  failures elsewhere never slow down the owner's usual browser (OWASP's
  "device cookies").

Counters live in the cache (Redis in production): atomic `add` claims the
single slot, so parallel guesses cannot slip through together.
"""

import hashlib
import secrets

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db.models import Q
from django.http import HttpRequest, HttpResponse

DEVICE_COOKIE = "opsconsole_device"
_DEVICE_SALT = "opsconsole.signin_throttle.device"
_DEVICE_MAX_AGE = 180 * 24 * 3600


def _account_id(login: str) -> str:
    """The account a login names (username or e-mail, any case), so that both
    spellings share one counter; an unknown login gets a counter of its own."""
    from .models import User

    pk = User.objects.filter(Q(username__iexact=login) | Q(email__iexact=login)).values_list("pk", flat=True).first()
    return f"user:{pk}" if pk is not None else "login:" + hashlib.sha256(login.lower().encode()).hexdigest()[:32]


def _device(request: HttpRequest, account: str) -> str | None:
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=_DEVICE_SALT, max_age=_DEVICE_MAX_AGE)
    except signing.BadSignature:
        return None
    return data.get("d") if data.get("a") == account else None


def _scope(request: HttpRequest, login: str) -> str:
    account = _account_id(login)
    device = _device(request, account)
    scope = f"{account}:device:{device}" if device else account
    return "signin-slowdown:" + scope


def delay_for(failures: int) -> int:
    """Seconds between attempts once `failures` failures have been counted."""
    if failures < settings.LOGIN_SLOWDOWN_AFTER:
        return 0
    return min(2 ** (failures - settings.LOGIN_SLOWDOWN_AFTER), settings.LOGIN_SLOWDOWN_MAX_DELAY_SECONDS)


def wait_seconds(request: HttpRequest, login: str) -> int:
    """0 if this attempt may go ahead (and takes the slot), else the seconds to wait."""
    scope = _scope(request, login)
    request._signin_slowdown_scope = scope
    delay = delay_for(cache.get(f"{scope}:failures", 0))
    if not delay or cache.add(f"{scope}:slot", 1, timeout=delay):
        return 0
    return delay


def record_failure(request: HttpRequest, login: str) -> None:
    scope = getattr(request, "_signin_slowdown_scope", None) or _scope(request, login)
    key = f"{scope}:failures"
    window = settings.LOGIN_SLOWDOWN_WINDOW_SECONDS
    if cache.add(key, 1, timeout=window):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
        return
    cache.touch(key, window)


def remember_device(request: HttpRequest, response: HttpResponse | None, user) -> None:
    """After a complete sign-in (second factor included): this browser is trusted for this account."""
    if response is None:
        return
    value = signing.dumps({"a": f"user:{user.pk}", "d": secrets.token_urlsafe(12)}, salt=_DEVICE_SALT)
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=_DEVICE_MAX_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
