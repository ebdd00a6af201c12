"""The default cache fails open when Redis refuses or stops answering
(opsconsole/cache.py); the "live" alias raises so that live pages know."""

import socket
import time

import pytest
import redis
from django.core.cache.backends.redis import RedisCache

from opsconsole.cache import TolerantRedisCache
from tests.processes import free_port

OPTIONS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}


@pytest.fixture
def silent_redis():
    """Accepts connections and never answers (a hung or partitioned Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


@pytest.mark.parametrize("down", ["refused", "silent"])
def test_tolerant_cache_fails_open_within_its_timeout(down, silent_redis, caplog):
    url = silent_redis if down == "silent" else f"redis://127.0.0.1:{free_port()}/0"
    cache = TolerantRedisCache(url, {"OPTIONS": OPTIONS})
    started = time.monotonic()
    assert cache.get("k", "fallback") == "fallback"
    assert cache.get_many(["a", "b"]) == {}
    assert cache.add("slot", 1, timeout=5) is True  # a throttle's slot is granted, never waited for
    assert cache.incr("n", 3) == 3
    cache.set("k", 1)
    assert cache.set_many({"a": 1}) == ["a"]
    assert cache.touch("k") is False and cache.delete("k") is False
    assert time.monotonic() - started < 15  # ~1 s per call at most, no hang
    assert "cache unavailable, get skipped" in caplog.text


def test_strict_alias_raises_so_live_pages_rerender():
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", {"OPTIONS": OPTIONS})
    with pytest.raises(redis.ConnectionError):
        cache.get_many(["live:incidents"])


def test_tolerant_cache_works_normally_on_a_live_redis(settings):
    cache = TolerantRedisCache(settings.REDIS_URL, {"OPTIONS": OPTIONS, "KEY_PREFIX": f"t{free_port()}"})
    assert cache.add("slot", 1, timeout=5) is True
    assert cache.add("slot", 1, timeout=5) is False
    assert cache.incr("slot") == 2
    cache.delete("slot")
