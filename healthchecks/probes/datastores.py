"""Datastore probes: PostgreSQL query value, Redis ping / memory / list length."""

from __future__ import annotations

import contextlib
import math
import time

from . import files, policy
from .base import OK, ProbeError, ProbeResult, ProbeSpec, describe_threshold, excerpt, grade


def _number(value: object, what: str) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)  # Decimal, int, float, numeric strings
    except (TypeError, ValueError) as exc:
        raise ProbeError(
            f"{what} returned {excerpt(value)}, not a number", f"{what} returned something other than a number"
        ) from exc


def _first_line(exc: BaseException, limit: int = 100) -> str:
    """The server's own words, bounded: an error can quote data (PostgreSQL's
    `invalid input syntax for type integer: "…"`)."""
    lines = str(exc).strip().splitlines()
    text = " ".join(lines[0].rpartition("failed: ")[2].split()) if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_only_query(query: str) -> str:
    """The query if it is one SELECT (or WITH … SELECT); else ProbeError.

    A first line of defence with a clear message; the guarantees are the
    protocol's (one statement) and the read-only transaction's (no write)."""
    if not query.lstrip().lower().startswith(("select", "with")):
        raise ProbeError(
            "only a SELECT (or WITH … SELECT) query may run: checks run read-only",
            "the query is not a SELECT",
        )
    return query


# DSN parameters that make libpq read a file on the worker.
_FILE_PARAMETERS = ("passfile", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslcrldir", "service", "servicefile")


def dsn_parameters(dsn: str) -> dict:
    """The DSN's parameters; file parameters only inside HEALTHCHECK_FILES_DIR
    (resolved to their real path), service files never. ProbeError otherwise."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except Exception as exc:  # psycopg.ProgrammingError: a malformed DSN
        raise ProbeError(f"malformed DSN: {_first_line(exc)}", "malformed DSN") from exc
    for name in _FILE_PARAMETERS:
        value = params.get(name)
        if value and not (name == "sslrootcert" and value == "system"):
            if name in ("service", "servicefile"):
                raise files.FileRefused(f"the DSN parameter {name!r} is not allowed: give host, port and dbname")
            params[name] = files.allowed_file(str(value), what=f"DSN {name}")
    return params


def check_dsn(dsn: str) -> None:
    """The form's check of a DSN: its parameters, and its literal addresses
    against the target policy (names are checked when the probe resolves them)."""
    params = dsn_parameters(dsn)
    for key in ("host", "hostaddr"):
        for host in str(params.get(key) or "").split(","):
            if policy.literal_address(host.strip()):
                policy.check_address(host.strip().strip("[]"))


async def pinned_conninfo(dsn: str) -> str:
    """The DSN with every host resolved and checked against the target policy,
    and `hostaddr` set to the checked addresses so that libpq connects to
    exactly them (`host` is kept for TLS verification)."""
    import os

    from psycopg.conninfo import make_conninfo

    params = dsn_parameters(dsn)
    hosts = str(params.get("host") or os.environ.get("PGHOST") or "/var/run/postgresql").split(",")
    ports = str(params.get("port") or os.environ.get("PGPORT") or "5432").split(",")
    if params.get("hostaddr"):
        for address in str(params["hostaddr"]).split(","):
            policy.check_address(address.strip())
        return make_conninfo("", **params)
    addresses = []
    for index, host in enumerate(hosts):
        host = host.strip()
        if not host or host.startswith(("/", "@")):
            policy.check_unix_socket(host or "/var/run/postgresql")
            addresses.append("")
            continue
        port = int(ports[index if len(ports) > 1 else 0] or 5432)
        addresses.append((await policy.resolve(host, port))[0])
    if any(addresses):
        params["hostaddr"] = ",".join(addresses)
    return make_conninfo("", **params)


async def probe_postgres(spec: ProbeSpec) -> ProbeResult:
    """Runs the query as exactly one statement (extended protocol: a prepared
    statement refuses several), inside a READ ONLY transaction on a session
    whose default is read-only, with statement_timeout just under the check's
    timeout. The transaction is rolled back, whatever the query did."""
    import psycopg

    config = spec.config
    query = read_only_query(config.get("query") or "SELECT 1")
    statement_ms = max(1, int(spec.timeout * 1000 * 0.9))
    conninfo = await pinned_conninfo(config["dsn"])
    started = time.perf_counter()
    try:
        connection = await psycopg.AsyncConnection.connect(
            conninfo,
            connect_timeout=max(1, math.ceil(spec.timeout)),
            autocommit=False,
            # Overrides any `options` in the DSN: these settings are ours.
            options=(
                f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms} "
                f"-c idle_in_transaction_session_timeout={statement_ms * 2} "
                "-c default_transaction_read_only=on"
            ),
        )
    except psycopg.OperationalError as exc:
        raise ProbeError(f"cannot connect to PostgreSQL: {_first_line(exc)}", "cannot connect to PostgreSQL") from exc
    try:
        await connection.set_read_only(True)  # BEGIN READ ONLY before the query
        async with connection.cursor() as cursor:
            try:
                await cursor.execute(query, prepare=True)
                row = await cursor.fetchone() if cursor.description is not None else None
            except psycopg.errors.QueryCanceled as exc:
                text = f"query cancelled by statement_timeout ({statement_ms} ms)"
                raise ProbeError(text, text) from exc
            except psycopg.errors.ReadOnlySqlTransaction as exc:
                text = "the query tried to write: checks run read-only"
                raise ProbeError(text, text) from exc
            except psycopg.Error as exc:
                raise ProbeError(f"query failed: {_first_line(exc)}", "query failed") from exc
    finally:
        with contextlib.suppress(psycopg.Error):
            await connection.rollback()
        await connection.close()
    latency = (time.perf_counter() - started) * 1000
    if row is None:
        raise ProbeError("the query returned no row", "the query returned no row")
    value = _number(row[0], "the query")
    below = bool(config.get("below"))
    state = grade(value, spec.warning, spec.critical, below=below)
    return ProbeResult(
        state,
        f"query value {describe_threshold(value, state, spec.warning, spec.critical, below=below)}",
        latency,
        {"value": value},
        summary=_value_summary(state, "query value"),
    )


def _value_summary(state: str, what: str) -> str:
    """A value's verdict without the value (the value is fetched data)."""
    if state == OK:
        return f"{what} within the thresholds"
    return f"{what} beyond the {state} threshold"


# Redis URL query parameters a probe accepts; others (ssl_ca_certs=/path …)
# would make the client read the worker's files.
_REDIS_PARAMETERS = {"db", "ssl_cert_reqs", "ssl_check_hostname", "protocol"}
_REDIS_URL_PARTS = {"username", "password", "host", "port", "path", "connection_class"}


def redis_options(url: str) -> dict:
    """The client options of a Redis URL; ProbeError for a malformed URL or a
    parameter outside _REDIS_PARAMETERS."""
    from redis.asyncio.connection import parse_url

    try:
        options = dict(parse_url(url))
    except ValueError as exc:
        raise ProbeError(f"malformed Redis URL: {excerpt(str(exc), 200)}", "malformed Redis URL") from exc
    extra = sorted(set(options) - _REDIS_PARAMETERS - _REDIS_URL_PARTS)
    if extra:
        raise ProbeError(f"the Redis URL parameter(s) {', '.join(extra)} are not allowed", "Redis URL refused")
    return options


async def _redis_client(url: str, timeout: float):
    """A client whose connections go to the checked address of the URL's host."""
    import redis.asyncio as aioredis
    from redis.asyncio.connection import Connection, UnixDomainSocketConnection

    options = redis_options(url)
    connection_class = options.pop("connection_class", Connection)
    if connection_class is UnixDomainSocketConnection:
        policy.check_unix_socket(options.get("path", ""))
    else:
        host, port = options.get("host", "localhost"), int(options.get("port", 6379))
        address = (await policy.resolve(host, port))[0]

        class PinnedConnection(connection_class):
            def _connection_arguments(self):
                arguments = dict(super()._connection_arguments())
                arguments["host"] = address
                if arguments.get("ssl"):
                    arguments["server_hostname"] = host  # verify the name, not the address
                return arguments

        connection_class = PinnedConnection
    pool = aioredis.ConnectionPool(
        connection_class=connection_class,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        **options,
    )
    return aioredis.Redis.from_pool(pool)  # closing the client closes the pool


async def probe_redis(spec: ProbeSpec) -> ProbeResult:
    from redis import exceptions

    config = spec.config
    mode = config.get("mode", "ping")
    client = await _redis_client(config["url"], spec.timeout)
    started = time.perf_counter()
    try:
        if mode == "memory":
            info = await client.info("memory")
            used = int(info.get("used_memory", 0))
            limit = int(info.get("maxmemory") or 0) or int(info.get("total_system_memory") or 0)
            if not limit:
                text = "Redis reports neither maxmemory nor total_system_memory"
                raise ProbeError(text, text)
            value, unit, what = used * 100 / limit, "%", "memory used"
        elif mode == "list":
            key = config["key"]
            kind = (await client.type(key)).decode()
            if kind == "zset":
                length = await client.zcard(key)
            elif kind in ("list", "none"):
                length = await client.llen(key)
            else:
                raise ProbeError(f"key {key!r} is a {kind}, not a list", f"the key is a {kind}, not a list")
            value, unit, what = float(length), "", f"length of {key}"
        else:
            await client.ping()
            latency = (time.perf_counter() - started) * 1000
            state = grade(latency, spec.warning, spec.critical)
            text = "PONG in " + describe_threshold(round(latency, 1), state, spec.warning, spec.critical, unit=" ms")
            return ProbeResult(state, text, latency, summary=text)
    except exceptions.AuthenticationError as exc:
        raise ProbeError(f"Redis refused the credentials: {_first_line(exc)}", "Redis refused the credentials") from exc
    except exceptions.ConnectionError as exc:
        raise ProbeError(f"cannot connect to Redis: {_first_line(exc)}", "cannot connect to Redis") from exc
    except exceptions.TimeoutError as exc:
        text = f"Redis did not answer within {spec.timeout:g}s"
        raise ProbeError(text, text) from exc
    except exceptions.ResponseError as exc:
        raise ProbeError(f"Redis error: {_first_line(exc)}", "Redis answered with an error") from exc
    finally:
        await client.aclose()
    latency = (time.perf_counter() - started) * 1000
    state = grade(value, spec.warning, spec.critical)
    message = f"{what} {describe_threshold(value, state, spec.warning, spec.critical, unit=unit)}"
    return ProbeResult(
        state,
        message if state != OK else f"{what}: {value:g}{unit}",
        latency,
        {"value": value},
        summary=_value_summary(state, "memory used" if mode == "memory" else "list length"),
    )
