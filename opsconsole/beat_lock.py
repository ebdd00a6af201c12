"""One Celery beat at a time, whatever the deployment does.

Kubernetes runs beat as one replica with the Recreate strategy, but a
Deployment scaled by mistake, a second `celery beat` on a host, or a node
that lost contact while its pod still runs would each send every schedule
entry twice. So beat takes a Redis lock before its first tick (the
`beat_init` signal) and keeps it alive from a daemon thread; a second beat
waits for the lock, and takes over within BEAT_LOCK_TTL_SECONDS of the first
one dying. A beat that finds it lost the lock (Redis was flushed, or it was
paused longer than the TTL and another took over) exits at once rather than
tick beside the new holder; its supervisor restarts it and it waits.

Without REDIS_URL (`make run` on one machine, the file broker) there is no
lock: there is only the one beat of the Procfile.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading

import redis
from django.conf import settings
from redis.exceptions import LockError

logger = logging.getLogger(__name__)

KEY = "opsconsole:celery-beat-lock"
TTL_SECONDS = 60


class BeatLock:
    def __init__(self, url: str, *, key: str = KEY, ttl: float = TTL_SECONDS, on_lost=None) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        self.ttl = ttl
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        # thread_local=False: the renewing thread is not the acquiring one.
        self.lock = self.client.lock(key, timeout=ttl, sleep=min(1.0, ttl / 4), thread_local=False)
        self.on_lost = on_lost or _exit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> str | None:
        value = self.client.get(self.lock.name)
        return value.decode() if value else None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if self.lock.acquire(blocking=False, token=self.identity):
            return True
        if not blocking:
            return False
        logger.warning("another celery beat holds the beat lock (%s); waiting for it", self.holder())
        return bool(self.lock.acquire(blocking=True, blocking_timeout=timeout, token=self.identity))

    def keep_alive(self) -> None:
        """Renew the lock every third of its TTL until release()."""

        def run() -> None:
            while not self._stop.wait(self.ttl / 3):
                try:
                    self.lock.reacquire()
                except LockError:
                    logger.critical("celery beat lost its lock (%s holds it): stopping this beat", self.holder())
                    self.on_lost()
                    return
                except redis.RedisError as exc:
                    # Redis is the broker too: nothing is sent while it is down.
                    logger.warning("cannot renew the beat lock: %s", exc)

        self._thread = threading.Thread(target=run, name="beat-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.lock.release()
        except (LockError, redis.RedisError):
            pass


def _exit() -> None:
    os._exit(3)


_held: BeatLock | None = None


def hold_for_this_beat() -> BeatLock | None:
    """Called by the beat_init signal: block until this beat holds the lock."""
    global _held
    if not settings.REDIS_URL:
        logger.info("no REDIS_URL: celery beat runs without a lock (one machine)")
        return None
    beat_lock = BeatLock(settings.REDIS_URL)
    beat_lock.acquire()
    logger.info("celery beat holds the beat lock as %s", beat_lock.identity)
    beat_lock.keep_alive()
    # A beat stopped cleanly (SIGTERM on a rollout) hands over at once, not after the TTL.
    atexit.register(beat_lock.release)
    _held = beat_lock
    return beat_lock
