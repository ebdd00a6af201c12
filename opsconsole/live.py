"""Live pages: open pages follow changes made by others within seconds.

One mechanism for every page (docs/architecture.md, "Live updates"):

- Writes *bump* an area ("incidents", "healthchecks", "check:42", …): after the
  transaction commits, the area's key in the cache (Redis in production) gets a
  new random token. Every saved or deleted model of a product app bumps its app,
  every audited action bumps its target's app, and writes that bypass both
  (bulk result inserts) bump by hand.
- A view decorated with `@live_page(areas…, regions=(…))` stamps its page with
  an ETag: a hash of the areas' tokens, the user, the URL and the current
  minute (time-derived state such as *breached* badges is re-rendered at least
  once a minute). base.html then adds one hidden poller that asks for the same
  URL every few seconds with `If-None-Match`.
- Nothing changed: 304 with no body, answered after the sign-in and permission
  checks (session, user, role: at most three queries) and one cache read.
  Something changed: the full page is rendered and htmx swaps only the page's
  live regions (`hx-select-oob`), keeping the rest (and anything typed) intact.
"""

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.core.cache import caches
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified

logger = logging.getLogger(__name__)

POLL_SECONDS = 3
# Pages show state derived from the clock (breached, late, "due in"): a
# page is re-rendered at least this often even when nothing was written.
REFRESH_SECONDS = 60
POLLER_ID = "live-poll"
_TTL = 24 * 3600  # a missing key reads as "0": the page refreshes once, no harm
# Models of these apps bump their app's area when saved or deleted.
PRODUCT_APPS = frozenset({"incidents", "healthchecks", "checklists", "runbooks", "oncall", "notifications"})
ALL_AREAS = (*sorted(PRODUCT_APPS), "opsconsole")


def _key(area: str) -> str:
    return f"live:{area}"


def bump(*areas: str) -> None:
    """Mark areas changed once the current transaction commits (at once outside one).

    The areas a transaction bumps are gathered into one cache write at commit:
    a sweep that touches 500 incidents makes one round trip, not 500 (each
    cost a millisecond, more than the rest of the sweep's work per incident).
    """
    areas = tuple(area for area in areas if area)
    if not areas:
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _store(areas)
        return
    pending = _pending_for(connection)
    pending.update(areas)


class _Transaction:
    """The live-page bumps of one database transaction: its registrations
    (savepoint ids → [index in run_on_commit, flush, areas]) and the areas
    its commit has stored so far."""

    def __init__(self) -> None:
        self.registered: dict[tuple, list] = {}
        self.stored: set[str] = set()
        self.flushed = False
        self.prune_above = 32

    def prune(self, callbacks: list) -> None:
        """Forget registrations no longer due (rolled back, or left by an
        earlier transaction that rolled back). In place: every flush of this
        commit shares one `stored` set, so the object is never swapped
        mid-transaction. The threshold doubles so pruning stays amortised O(1)."""
        alive = {id(callback[1]) for callback in callbacks}
        self.registered = {key: entry for key, entry in self.registered.items() if id(entry[1]) in alive}
        self.prune_above = max(32, 2 * len(self.registered))

    def pending(self, savepoints: tuple, callbacks: list) -> set[str] | None:
        """That registration's areas if its flush is still due at commit (a
        rollback of its savepoint drops it, and rebuilds the list: an index
        that moved is looked up again)."""
        entry = self.registered.get(savepoints)
        if entry is None:
            return None
        index, flush, areas = entry
        if index < len(callbacks) and callbacks[index][1] is flush:
            return areas
        for position, callback in enumerate(callbacks):
            if callback[1] is flush:
                entry[0] = position
                return areas
        del self.registered[savepoints]  # rolled back: it never runs
        return None


def _pending_for(connection) -> set[str]:
    """The set this block's commit will store, registering its on_commit once
    per savepoint level (so a rollback drops exactly what Django's own
    on_commit drops).

    At commit the registrations that survived run one after the other, and
    each stores only the areas no earlier one of the same commit stored: a
    transaction with savepoints (an Alertmanager delivery has several levels)
    still makes one cache write, two when a savepoint bumped an area the
    others did not.
    """
    savepoints = tuple(connection.savepoint_ids)
    txn = connection.__dict__.get("_live_transaction")
    # A bump after a flush ran is in a new transaction (commits run every
    # flush at once, with no bump in between); a rolled-back transaction
    # never flushed and stored nothing, so its object is reused and its
    # dead registrations are found dead below or pruned.
    if txn is None or txn.flushed:
        txn = connection.__dict__["_live_transaction"] = _Transaction()
    elif len(txn.registered) > txn.prune_above:
        txn.prune(connection.run_on_commit)
    pending = txn.pending(savepoints, connection.run_on_commit)
    if pending is not None:
        return pending
    pending = set()

    def flush() -> None:
        txn.flushed = True
        fresh = pending - txn.stored
        txn.stored |= pending
        if fresh:
            _store(tuple(sorted(fresh)))

    transaction.on_commit(flush)
    txn.registered[savepoints] = [len(connection.run_on_commit) - 1, flush, pending]
    return pending


def _store(areas: tuple[str, ...]) -> None:
    token = secrets.token_hex(6)
    try:
        if len(areas) == 1:  # the usual case: one SET, no pipeline of MSET + EXPIRE
            caches["live"].set(_key(areas[0]), token, timeout=_TTL)
        else:
            caches["live"].set_many({_key(area): token for area in areas}, timeout=_TTL)
    except Exception:  # a write never fails because the live stamp could not move
        logger.warning("Could not mark %s changed for live pages", ", ".join(areas), exc_info=True)


def stamp(areas: tuple[str, ...]) -> str | None:
    """The areas' current tokens; None when the cache cannot be read (always re-render)."""
    try:
        tokens = caches["live"].get_many([_key(area) for area in areas])
    except Exception:
        logger.warning("Live stamp unreadable", exc_info=True)
        return None
    return ",".join(str(tokens.get(_key(area), "0")) for area in areas)


def etag_for(request: HttpRequest, areas: tuple[str, ...]) -> str | None:
    tokens = stamp(areas)
    if tokens is None:
        return None
    minute = int(time.time() // REFRESH_SECONDS)
    raw = f"{request.user.pk}|{request.get_full_path()}|{tokens}|{minute}"
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class Live:
    etag: str
    select: str  # "#region-a,#region-b" for hx-select-oob
    seconds: int = POLL_SECONDS


class _FullPage:
    """Stands in for request.htmx on a live poll: the view renders its full
    page (not the partial it gives other htmx requests), htmx picks the regions."""

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str):
        return None


def live_page(*areas: str, regions: tuple[str, ...]) -> Callable:
    """View decorator (inside @requires): conditional polling of the page's regions.

    An area may name a URL argument: "check:{pk}" is formatted with the view's kwargs.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method != "GET":
                return view(request, *args, **kwargs)
            names = tuple(area.format(**kwargs) for area in areas)
            etag = etag_for(request, names)
            polling = request.headers.get("HX-Trigger") == POLLER_ID
            if polling and etag is not None and request.headers.get("If-None-Match") == etag:
                response = HttpResponseNotModified()
                response["ETag"] = etag
                return response
            if etag is not None:
                request.live = Live(etag=etag, select=",".join(f"#{region}" for region in regions))
            if polling:
                request.htmx = _FullPage()
            response = view(request, *args, **kwargs)
            if polling:
                # The poll shows no messages: leave them for the next full page.
                storage = getattr(request, "_messages", None)
                if storage is not None:
                    storage.used = False
                if etag is not None:
                    response["ETag"] = etag
                response["Cache-Control"] = "no-store"
            return response

        wrapper.live_areas = areas
        return wrapper

    return decorator


def _model_area(sender) -> str | None:
    meta = getattr(sender, "_meta", None)
    if meta is None:
        return None
    if meta.app_label in PRODUCT_APPS:
        return meta.app_label
    return "opsconsole" if meta.label_lower == "opsconsole.service" else None


def on_model_change(sender, **kwargs) -> None:
    """post_save / post_delete / m2m_changed receiver (connected in OpsConsoleConfig.ready)."""
    if kwargs.get("raw"):
        return  # fixtures loading
    bump(_model_area(sender) or "")
