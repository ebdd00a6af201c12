"""The CACHES setting, built by settings.py (no Django imports here).

Two aliases on the same Redis (docs/operations.md "Faults"):
- "default": throttles and rate limits; fails open when Redis is down
  (opsconsole.cache.TolerantRedisCache), so that people can still sign in.
- "live": live-page stamps; raises (opsconsole.cache.StrictRedisCache), so
  that opsconsole.live re-renders pages instead of answering 304 from stamps
  it cannot read.
A Redis that stops answering (not just refusing) costs a cache call
TIMEOUT_SECONDS, never a hung request.
"""

TIMEOUT_SECONDS = 1.0


def caches(redis_url: str) -> dict[str, dict]:
    if not redis_url:
        # One process-local store for both aliases (same LOCATION).
        return {
            alias: {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "opsconsole"}
            for alias in ("default", "live")
        }
    common = {
        "LOCATION": redis_url,
        "OPTIONS": {"socket_connect_timeout": TIMEOUT_SECONDS, "socket_timeout": TIMEOUT_SECONDS},
    }
    return {
        "default": {"BACKEND": "opsconsole.cache.TolerantRedisCache", **common},
        "live": {"BACKEND": "opsconsole.cache.StrictRedisCache", **common},
    }
