"""The probe target policy: the networks probes may not reach.

A check's target is chosen by whoever holds `config.edit`, so it is treated
as hostile: without a policy an SRE could point a probe at the cloud metadata
service (169.254.169.254) or anything else only the worker can reach and read
the answer through the check's result.

Every probe resolves its target's name once (`resolve`), checks every address
against HEALTHCHECK_DENY_NETWORKS, and connects to exactly the address it
checked — never to the name again — so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot swap the target. TLS still
verifies the certificate against the name. A name with any denied address is
refused as a whole: which address the client would pick is not ours to guess.

Unix sockets reach the worker's own host: they count as loopback.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import socket
import ssl as _ssl
from collections.abc import Iterable, Sequence

from django.conf import settings

from .base import ProbeError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names usable in HEALTHCHECK_DENY_NETWORKS beside CIDR networks.
ALIASES: dict[str, tuple[str, ...]] = {
    "link-local": ("169.254.0.0/16", "fe80::/10"),
    # Cloud metadata services outside the link-local ranges (Alibaba, AWS IPv6).
    "metadata": ("169.254.169.254/32", "100.100.100.200/32", "fd00:ec2::254/128"),
    # 0.0.0.0 and :: connect to the local host on Linux.
    "loopback": ("127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128"),
    "private": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"),
}
DEFAULT_DENY = ("link-local", "metadata")
REFUSED_SUMMARY = "target refused by the probe target policy"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOOPBACK = ipaddress.ip_address("127.0.0.1")


class TargetRefused(ProbeError):
    def __init__(self, message: str):
        super().__init__(message, REFUSED_SUMMARY)


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR networks and alias names → networks. ValueError names a bad entry."""
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        for text in ALIASES.get(entry.lower(), (entry,)):
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError as exc:
                raise ValueError(
                    f"{entry!r} is neither a network (10.0.0.0/8, fe80::/10) nor one of {', '.join(ALIASES)}"
                ) from exc
    return tuple(networks)


@functools.lru_cache(maxsize=8)
def _parsed(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_networks(entries)


_LAST_ENTRIES: list = [None, ()]  # the setting's value last seen, and its tuple


def _entries() -> tuple[str, ...]:
    # Read for every address a probe connects to: the tuple is rebuilt only
    # when the setting's value is another object (override_settings, a reload).
    value = getattr(settings, "HEALTHCHECK_DENY_NETWORKS", DEFAULT_DENY)
    if value is not _LAST_ENTRIES[0]:
        _LAST_ENTRIES[:] = [value, tuple(value)]
    return _LAST_ENTRIES[1]


def denied_networks() -> tuple[IPNetwork, ...]:
    return _parsed(_entries())


def _forms(address: IPAddress) -> list[IPAddress]:
    """The address and the IPv4 address it carries, if any (::ffff:a.b.c.d,
    NAT64 64:ff9b::a.b.c.d): a denied IPv4 network is denied in either form."""
    forms = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)
        elif address in _NAT64:
            forms.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return forms


# Cached per address and setting: a worker probes the same few thousand
# addresses over and over, and parsing an address costs more than connecting
# to a local one.
@functools.lru_cache(maxsize=16384)
def _denied(address: str, entries: tuple[str, ...]) -> IPNetwork | None:
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    for form in _forms(parsed):
        for network in _parsed(entries):
            if form.version == network.version and form in network:
                return network
    return None


def denied_by(address: str | IPAddress) -> IPNetwork | None:
    """The denied network containing the address, or None."""
    return _denied(str(address), _entries())


@functools.lru_cache(maxsize=16384)
def literal_address(host: str) -> IPAddress | None:
    """The address if `host` is an IP literal ([::1] and fe80::1%eth0 too)."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def check_address(address: str, *, name: str | None = None) -> None:
    network = denied_by(address)
    if network is not None:
        target = f"{name} resolves to {address}" if name and name != address else address
        raise TargetRefused(
            f"{target}, in the denied network {network} (HEALTHCHECK_DENY_NETWORKS): probes may not connect there"
        )


def check_unix_socket(path: str) -> None:
    if denied_by(_LOOPBACK) is not None:
        raise TargetRefused(
            f"Unix socket {path[:100]!r}: sockets on the worker count as loopback, "
            "which HEALTHCHECK_DENY_NETWORKS denies"
        )


def _addresses(host: str, infos: Sequence[tuple]) -> list[str]:
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise ProbeError(f"DNS lookup failed: no address for {host}", "DNS lookup failed")
    for address in addresses:
        check_address(address, name=host)
    return addresses


async def resolve(host: str, port: int) -> list[str]:
    """The checked addresses of `host`, to connect to instead of the name."""
    literal = literal_address(host)
    if literal is not None:
        check_address(host.strip("[]"))
        return [host.strip("[]")]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _addresses(host, infos)


def resolve_blocking(host: str, port: int) -> list[str]:
    """resolve() for code running in a thread (the Kubernetes client)."""
    if literal_address(host) is not None:
        check_address(host.strip("[]"))
        return [host.strip("[]")]
    return _addresses(host, socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


async def open_connection(host: str, port: int, *, ssl=None, server_hostname: str | None = None):
    """asyncio.open_connection to the checked addresses of `host`, in order;
    TLS verifies against `server_hostname` (default: the name)."""
    addresses = await resolve(host, port)
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return await asyncio.open_connection(
                address,
                port,
                ssl=ssl,
                server_hostname=(server_hostname or host.strip("[]")) if ssl else None,
            )
        except _ssl.SSLError:
            raise  # the server answered: its certificate is the result
        except OSError as exc:  # ConnectionRefusedError etc.: try the next address
            error = exc
    raise error


async def connect_socket(host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket to the checked addresses of
    `host`, in order (the plain-HTTP probe's lean path)."""
    loop = asyncio.get_running_loop()
    addresses = await resolve(host, port)
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await _connect(loop, sock, address, port)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:  # cancelled (the probe's timeout): no socket left open
            sock.close()
            raise
        return sock
    raise error


def fd_watchers(loop: asyncio.AbstractEventLoop) -> tuple:
    """(add_reader, remove_reader, add_writer, remove_writer) for a socket
    only the probe uses. On asyncio's selector loops, their underscored
    forms: the public ones first look the descriptor up among the loop's
    transports (a WeakValueDictionary miss raising and catching KeyError)
    to refuse one a transport owns, four times per plain-HTTP probe, 15 % of
    its CPU; a probe's bare socket never belongs to a transport. Any other
    loop: the public methods."""
    if all(hasattr(loop, name) for name in ("_add_reader", "_remove_reader", "_add_writer", "_remove_writer")):
        return loop._add_reader, loop._remove_reader, loop._add_writer, loop._remove_writer
    return loop.add_reader, loop.remove_reader, loop.add_writer, loop.remove_writer


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():  # the writer may fire again before the waiting task runs
        waiter.set_result(None)


async def _connect(loop: asyncio.AbstractEventLoop, sock: socket.socket, address: str, port: int) -> None:
    """loop.sock_connect for an address already checked: one writer and one
    future, without its name-resolution check, partial and done callback
    (the connection is most of a plain probe's CPU). Errors as sock_connect
    raises them (ConnectionRefusedError etc.)."""
    if "%" in address:  # an IPv6 scope: sock_connect resolves it to the 4-tuple the socket needs
        await loop.sock_connect(sock, (address, port))
        return
    err = sock.connect_ex((address, port))
    if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
        fd = sock.fileno()
        waiter = loop.create_future()
        _add_reader, _remove_reader, add_writer, remove_writer = fd_watchers(loop)
        add_writer(fd, _wake, waiter)
        try:
            await waiter
        finally:
            remove_writer(fd)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, f"Connect call failed {(address, port)}")


async def create_connection(protocol_factory, host: str, port: int, *, ssl=None):
    """loop.create_connection to the checked addresses of `host`, in order."""
    loop = asyncio.get_running_loop()
    addresses = await resolve(host, port)
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return await loop.create_connection(
                protocol_factory,
                address,
                port,
                ssl=ssl,
                server_hostname=host.strip("[]") if ssl else None,
            )
        except _ssl.SSLError:
            raise
        except OSError as exc:
            error = exc
    raise error
