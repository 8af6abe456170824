"""Requests Assay sends on a user's say-so (AI-job webhooks): where they may go, and a
transport that goes only there. Bottom layer: imports nothing of Assay but its errors.

A URL a user gives could aim the server at itself or at its private network (server-side
request forgery). So the host is resolved once, when the URL is given; every address it
resolves to must be public, unless the operator lists the host in ``webhook_allowed_hosts``;
and the request later connects to the address that was checked, so a name that resolves
elsewhere by then (DNS rebinding) changes nothing. Redirects are never followed. The LLM's
address is the operator's own setting, not a user's, and does not go through here.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from assay.errors import AssayError


class OutboundRefused(AssayError):
    """The server will not send a request there."""

    code = "outbound_refused"
    status = 400


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked URL and the address its requests connect to."""

    url: str
    host: str
    port: int
    address: str


def allowed_hosts(setting: str) -> frozenset[str]:
    """``webhook_allowed_hosts`` as a set: names (any case) and addresses, comma-separated."""
    return frozenset(h.strip().lower().strip("[]") for h in setting.split(",") if h.strip())


def check_destination(
    url: str, allowed: Collection[str], *, what: str = "webhookUrl"
) -> Destination:
    """Where a request to ``url`` may go, resolved now; ``OutboundRefused`` names the rule a
    refused one breaks."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"{what}: Invalid url ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"{what}: Invalid url (expected http:// or https:// and a host)")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused(f"{what}: a URL with credentials in it is not accepted")
    host = parts.hostname.lower()
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port, what)
    listed = host in allowed or any(a in allowed for a in addresses)
    if not listed:
        for address in addresses:
            kind = _private_kind(address)
            if kind is not None:
                where = f"{host} is" if host == address else f"{host} resolves to {address},"
                raise OutboundRefused(
                    f"{what}: {where} {kind} address; webhooks reach public addresses only, "
                    "unless the server's webhook_allowed_hosts setting lists the host"
                )
    return Destination(url, host, port, addresses[0])


def _resolve(host: str, port: int, what: str) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundRefused(f"{what}: the host {host} cannot be resolved ({exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise OutboundRefused(f"{what}: the host {host} resolves to no address")
    return addresses


def _private_kind(address: str) -> str | None:
    """What kind of non-public address this is (an article and a noun), or None if public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        (ip.is_loopback, "a loopback"),
        (ip.is_link_local, "a link-local"),
        (ip.is_multicast, "a multicast"),
        (ip.is_unspecified, "an unspecified"),
        (ip.is_private, "a private"),
        (ip.is_reserved, "a reserved"),
        (not ip.is_global, "a non-public"),
    )
    return next((kind for hit, kind in checks if hit), None)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects every request to one address, whatever its host resolves to now; TLS still
    names and verifies the host (the stream's server name comes from the URL)."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._backend.connect_tcp(
            self._address, port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )  # fmt: skip

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("outbound requests do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def pinned_client(address: str, *, timeout: float) -> httpx.AsyncClient:
    """A client whose requests go to ``address`` only (a destination's checked address), with
    no proxy from the environment and no redirects followed."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx builds its connection pool without a choice of network backend: swap in one that
    # carries the pinned backend (the same options httpx gives its own).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=_PinnedBackend(address),
    )
    return httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )
