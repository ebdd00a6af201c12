"""Datastore probes: PostgreSQL query value, Redis ping / memory / list length."""

from __future__ import annotations

import math
import time

from .base import OK, ProbeError, ProbeResult, ProbeSpec, describe_threshold, grade


def _number(value: object, what: str) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)  # Decimal, int, float, numeric strings
    except (TypeError, ValueError) as exc:
        raise ProbeError(f"{what} returned {value!r}, not a number") from exc


async def probe_postgres(spec: ProbeSpec) -> ProbeResult:
    """Runs the query read-only, with statement_timeout just under the check's timeout."""
    import psycopg

    config = spec.config
    query = config.get("query") or "SELECT 1"
    statement_ms = max(1, int(spec.timeout * 1000 * 0.9))
    started = time.perf_counter()
    try:
        connection = await psycopg.AsyncConnection.connect(
            config["dsn"],
            connect_timeout=max(1, math.ceil(spec.timeout)),
            autocommit=True,
            options=f"-c statement_timeout={statement_ms} -c default_transaction_read_only=on",
        )
    except psycopg.OperationalError as exc:
        raise ProbeError(
            f"cannot connect to PostgreSQL: {str(exc).strip().splitlines()[0][:300]}"
        ) from exc
    try:
        async with connection.cursor() as cursor:
            try:
                await cursor.execute(query)
                row = await cursor.fetchone()
            except psycopg.errors.QueryCanceled as exc:
                raise ProbeError(
                    f"query cancelled by statement_timeout ({statement_ms} ms)"
                ) from exc
            except psycopg.errors.ReadOnlySqlTransaction as exc:
                raise ProbeError("the query tried to write: checks run read-only") from exc
            except psycopg.Error as exc:
                raise ProbeError(f"query failed: {str(exc).strip().splitlines()[0][:300]}") from exc
    finally:
        await connection.close()
    latency = (time.perf_counter() - started) * 1000
    if row is None:
        raise ProbeError("the query returned no row")
    value = _number(row[0], "the query")
    below = bool(config.get("below"))
    state = grade(value, spec.warning, spec.critical, below=below)
    return ProbeResult(
        state,
        f"query value {describe_threshold(value, state, spec.warning, spec.critical, below=below)}",
        latency,
        {"value": value},
    )


async def probe_redis(spec: ProbeSpec) -> ProbeResult:
    import redis.asyncio as aioredis
    from redis import exceptions

    config = spec.config
    mode = config.get("mode", "ping")
    client = aioredis.from_url(
        config["url"], socket_timeout=spec.timeout, socket_connect_timeout=spec.timeout
    )
    started = time.perf_counter()
    try:
        if mode == "memory":
            info = await client.info("memory")
            used = int(info.get("used_memory", 0))
            limit = int(info.get("maxmemory") or 0) or int(info.get("total_system_memory") or 0)
            if not limit:
                raise ProbeError("Redis reports neither maxmemory nor total_system_memory")
            value, unit, what = used * 100 / limit, "%", "memory used"
        elif mode == "list":
            key = config["key"]
            kind = (await client.type(key)).decode()
            if kind == "zset":
                length = await client.zcard(key)
            elif kind in ("list", "none"):
                length = await client.llen(key)
            else:
                raise ProbeError(f"key {key!r} is a {kind}, not a list")
            value, unit, what = float(length), "", f"length of {key}"
        else:
            await client.ping()
            latency = (time.perf_counter() - started) * 1000
            state = grade(latency, spec.warning, spec.critical)
            return ProbeResult(
                state,
                "PONG in "
                + describe_threshold(
                    round(latency, 1), state, spec.warning, spec.critical, unit=" ms"
                ),
                latency,
            )
    except exceptions.AuthenticationError as exc:
        raise ProbeError(f"Redis refused the credentials: {exc}") from exc
    except exceptions.ConnectionError as exc:
        raise ProbeError(f"cannot connect to Redis: {exc}") from exc
    except exceptions.TimeoutError as exc:
        raise ProbeError(f"Redis did not answer within {spec.timeout:g}s") from exc
    except exceptions.ResponseError as exc:
        raise ProbeError(f"Redis error: {exc}") from exc
    finally:
        await client.aclose()
    latency = (time.perf_counter() - started) * 1000
    state = grade(value, spec.warning, spec.critical)
    message = f"{what} {describe_threshold(value, state, spec.warning, spec.critical, unit=unit)}"
    return ProbeResult(
        state, message if state != OK else f"{what}: {value:g}{unit}", latency, {"value": value}
    )
