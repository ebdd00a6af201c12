"""The default cache fails open when Redis refuses or stops answering
(opsconsole/cache.py); the "live" alias raises so that live pages know."""

import socket
import time

import pytest
import redis

from opsconsole.cache import StrictRedisCache, TolerantRedisCache
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
    cache = StrictRedisCache(f"redis://127.0.0.1:{free_port()}/0", {"OPTIONS": OPTIONS})
    with pytest.raises(redis.ConnectionError):
        cache.get_many(["live:incidents"])


def test_tolerant_cache_works_normally_on_a_live_redis(settings):
    cache = TolerantRedisCache(settings.REDIS_URL, {"OPTIONS": OPTIONS, "KEY_PREFIX": f"t{free_port()}"})
    assert cache.add("slot", 1, timeout=5) is True
    assert cache.add("slot", 1, timeout=5) is False
    assert cache.incr("slot") == 2
    cache.delete("slot")


@pytest.mark.parametrize("backend", [StrictRedisCache, TolerantRedisCache])
def test_one_redis_client_is_kept_per_pool(backend, settings):
    """Django's client builds a redis.Redis per call (its constructor cost more
    CPU than a live stamp's round trip); ours keeps one per connection pool."""
    cache = backend(settings.REDIS_URL, {"OPTIONS": OPTIONS, "KEY_PREFIX": f"c{free_port()}"})
    first = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is first
    assert cache._cache.get_client() is first  # one server: reads and writes share the pool
    cache.set("k", "v", timeout=30)
    cache.set_many({"a": 1, "b": 2}, timeout=30)
    assert cache.get("k") == "v" and cache.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert 0 < redis.Redis.from_url(settings.REDIS_URL).ttl(cache.make_key("k")) <= 30
