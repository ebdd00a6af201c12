"""The default cache keeps answering when Redis does not.

The cache holds nothing the console cannot do without: sign-in slow-down
counters (opsconsole.signin_throttle), allauth's rate limits, and used TOTP
codes. During a Redis outage those fail *open* (reads miss, `add` claims,
writes are dropped) with a logged warning, so that people can still sign in
and work during an incident; the database holds everything that matters.
The live-page stamps use the strict "live" alias instead (opsconsole.live):
they must know when Redis is down, to re-render pages rather than answer 304.
"""

import logging

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_UNAVAILABLE = (RedisError, OSError)


def _warn(operation: str, exc: BaseException) -> None:
    logger.warning("cache unavailable, %s skipped (fails open): %s: %s", operation, type(exc).__name__, exc)


class _ReusedClient(RedisCacheClient):
    """Django's client makes a new redis.Redis for every cache call, and
    redis-py's constructor (its table of response callbacks) cost more CPU
    than the call's round trip: a tick's live stamp spent a third of a
    millisecond on it. A redis.Redis is only a front to its connection pool
    and safe to share between threads, so one per pool is kept."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None or client.connection_pool is not pool:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class StrictRedisCache(RedisCache):
    """Django's Redis cache with one client per pool (errors raise): the "live" alias."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = _ReusedClient


class TolerantRedisCache(StrictRedisCache):
    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except _UNAVAILABLE as exc:
            _warn("get", exc)
            return default

    def get_many(self, keys, version=None):
        try:
            return super().get_many(keys, version)
        except _UNAVAILABLE as exc:
            _warn("get_many", exc)
            return {}

    def add(self, key, value, timeout=None, version=None):
        try:
            return super().add(key, value, timeout, version)
        except _UNAVAILABLE as exc:
            # "Added": a throttle's slot or lock is granted rather than waited for forever.
            _warn("add", exc)
            return True

    def set(self, key, value, timeout=None, version=None):
        try:
            super().set(key, value, timeout, version)
        except _UNAVAILABLE as exc:
            _warn("set", exc)

    def set_many(self, data, timeout=None, version=None):
        try:
            return super().set_many(data, timeout, version)
        except _UNAVAILABLE as exc:
            _warn("set_many", exc)
            return list(data)

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except _UNAVAILABLE as exc:
            _warn("incr", exc)
            return delta

    def touch(self, key, timeout=None, version=None):
        try:
            return super().touch(key, timeout, version)
        except _UNAVAILABLE as exc:
            _warn("touch", exc)
            return False

    def delete(self, key, version=None):
        try:
            return super().delete(key, version)
        except _UNAVAILABLE as exc:
            _warn("delete", exc)
            return False

    def delete_many(self, keys, version=None):
        try:
            super().delete_many(keys, version)
        except _UNAVAILABLE as exc:
            _warn("delete_many", exc)

    def has_key(self, key, version=None):
        try:
            return super().has_key(key, version)
        except _UNAVAILABLE as exc:
            _warn("has_key", exc)
            return False
