"""Who is on call, asked by apps below oncall without importing it.

The oncall app sits above notifications and incidents in the app graph
(docs/architecture.md), yet both must page "whoever is on call". oncall
registers its resolver here in its AppConfig.ready(), the same way apps
register dashboard panels and metric collectors; callers ask `on_call_now`.
"""

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opsconsole.models import Service, User

OnCallResolver = Callable[["Service | None"], Iterable["User"]]

_resolver: OnCallResolver | None = None


def register_on_call_resolver(resolver: OnCallResolver) -> None:
    """Install the function answering "who is on call for this service now"
    (None: every rotation). Registering again replaces it, so ready() may run twice."""
    global _resolver
    _resolver = resolver


def on_call_now(service: "Service | None" = None) -> list["User"]:
    """Users on call now for `service`; nobody while no resolver is registered."""
    if _resolver is None:
        return []
    return list(_resolver(service))
