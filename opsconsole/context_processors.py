from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .navigation import navigation
from .roles import primary_role


def console(request: HttpRequest) -> dict:
    """What the base layout needs on every page: navigation and who is signed in."""
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    return {
        # Lazy: an htmx partial (a tick, a poll) never shows the navigation,
        # so it should not build it.
        "nav_items": SimpleLazyObject(lambda: navigation(request)) if signed_in else [],
        "user_role": primary_role(user) if signed_in else None,
        "open_signup": settings.OPEN_SIGNUP,
        # Set by @live_page (opsconsole.live): base.html adds the page's poller.
        "live": getattr(request, "live", None),
    }
