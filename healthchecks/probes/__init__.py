"""Probes, one async function per check kind, and the batch runner.

Guarantee: run_probe() and run_batch() never raise for a probe's failure.
Each probe is cut at its check's timeout; timeouts, refused connections,
bad certificates and malformed answers all end as a result with a message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from .base import CRITICAL, OK, UNKNOWN, WARNING, ProbeResult, ProbeSpec, error_message, error_summary
from .datastores import probe_postgres, probe_redis
from .network import probe_dns, probe_http, probe_tcp, probe_tls
from .platform import probe_heartbeat, probe_kubernetes, probe_prometheus

__all__ = [
    "CRITICAL",
    "OK",
    "UNKNOWN",
    "WARNING",
    "PROBES",
    "ProbeResult",
    "ProbeSpec",
    "run_batch",
    "run_probe",
]

PROBES: dict[str, Callable[[ProbeSpec], Awaitable[ProbeResult]]] = {
    "http": probe_http,
    "tcp": probe_tcp,
    "dns": probe_dns,
    "tls": probe_tls,
    "postgres": probe_postgres,
    "redis": probe_redis,
    "prometheus": probe_prometheus,
    "kubernetes": probe_kubernetes,
    "heartbeat": probe_heartbeat,
}


# A heartbeat reads the database's last ping: there is no round trip to time,
# and a latency of 0 ms would read as a fast answer.
UNTIMED_KINDS = frozenset({"heartbeat"})


async def run_probe(spec: ProbeSpec) -> ProbeResult:
    probe = PROBES.get(spec.kind)
    if probe is None:
        return ProbeResult(UNKNOWN, f"no probe for check type {spec.kind!r}")
    started = time.perf_counter()
    try:
        # asyncio.timeout (not wait_for): no extra task per probe, which
        # matters at thousands of probes per second.
        async with asyncio.timeout(spec.timeout):
            result = await probe(spec)
    except TimeoutError:
        text = f"timed out after {spec.timeout:g}s"
        result = ProbeResult(CRITICAL, text, summary=text)
    except KeyError as exc:
        text = f"check is missing the setting {str(exc.args[0])[:40]!r}"
        result = ProbeResult(UNKNOWN, text, summary=text)
    except Exception as exc:  # every other failure is the target's, reported as a message
        result = ProbeResult(CRITICAL, error_message(exc), summary=error_summary(exc))
    if result.latency_ms is None and spec.kind not in UNTIMED_KINDS:
        result.latency_ms = (time.perf_counter() - started) * 1000
    result.message = result.message[:500]
    result.summary = result.summary[:200]
    return result


async def run_batch(specs: Sequence[ProbeSpec], *, concurrency: int = 500) -> list[ProbeResult]:
    """Run the probes concurrently (at most `concurrency` at once), results in order.

    `concurrency` runners take the next probe from one shared iterator, rather
    than a task per probe waiting on a semaphore: a batch of thousands then
    costs no task and no semaphore waiter per probe (asyncio.Semaphore scans
    its waiters on every acquire). Each probe's timeout starts when it starts.
    """
    if any(spec.kind == "kubernetes" for spec in specs):
        # The kubernetes package takes seconds to import: do it before any
        # probe's timeout starts, so the first probe in a process is not cut.
        await asyncio.to_thread(_import_kubernetes)
    results: list[ProbeResult] = [None] * len(specs)  # type: ignore[list-item]  # every slot is filled below
    pending = iter(enumerate(specs))

    async def runner() -> None:
        for index, spec in pending:
            results[index] = await run_probe(spec)

    await asyncio.gather(*(runner() for _ in range(min(max(1, concurrency), len(specs)))))
    return results


def _import_kubernetes() -> None:
    import kubernetes.client  # noqa: F401
    import kubernetes.config  # noqa: F401


def run_batch_sync(specs: Sequence[ProbeSpec], *, concurrency: int = 500) -> list[ProbeResult]:
    """Run a batch from synchronous code (Celery task, view)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_batch(specs, concurrency=concurrency))
    # An event loop already runs in this thread (an ASGI server, Playwright's
    # sync API in tests): asyncio.run would refuse, so use a thread of our own.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run_batch(specs, concurrency=concurrency)).result()
