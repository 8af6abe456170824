"""The transport's bounds, below the routes: a request body's size and the time a client may
take to send it, the time it may take to send its headers, and the headers every answer
carries (security headers on pages).

These stand in front of everything a route does, so a hostile client costs the server no
more than the bounds allow: a 15 MB body is refused after 4 MB (or at once, when it says its
length), a body that trickles in is dropped after ``client_timeout_seconds``, and a client that
opens a connection and never finishes its headers is disconnected as slowly as it is slow.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from assay.server.errors import ApiError, error_body

#: the ASGI scope key of the moment a request reached the application
ARRIVED = "assay.arrived"
#: the largest request head (request line and headers) a client may send; larger is a 400
MAX_HEADER_BYTES = 16 * 1024

# Pages are server-rendered; their one stylesheet and one script come from Assay itself (no
# inline script, no inline style): nothing may load from elsewhere, nothing may frame them,
# and no address leaks to another site through a Referer. (same-origin, not no-referrer: with
# no-referrer a browser sends its forms' Origin as "null", and the chat page checks it.)
PAGE_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]  # fmt: skip
EVERY_ANSWER = [(b"x-content-type-options", b"nosniff")]


class BodyLimits:
    """ASGI middleware: refuse a body longer than ``max_bytes`` (413, before reading it when
    the client says its length, else as soon as the count passes it) and one the client does
    not finish sending within ``timeout`` seconds (408). Both in Omni's error shape. Once the
    body is in, ``receive`` is passed through untouched (a long-poll waits on it for the
    client leaving)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[ARRIVED] = time.perf_counter()  # where a request's Server-Timing starts
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, self._too_large(declared))
            return
        count = 0
        complete = False

        async def bounded_receive() -> Message:
            nonlocal count, complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                raise ApiError(408, f"The request body did not arrive within {self.timeout:g} s",
                               code="request_timeout") from None  # fmt: skip
            if message["type"] == "http.request":
                count += len(message.get("body", b""))
                if count > self.max_bytes:
                    raise self._too_large(None)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, bounded_receive, _with_headers(send))

    def _too_large(self, declared: int | None) -> ApiError:
        said = f" ({declared:,} bytes)" if declared is not None else ""
        return ApiError(413, f"The request body is too large{said}: the limit is "
                        f"{self.max_bytes:,} bytes (setting max_body_bytes)",
                        code="payload_too_large")  # fmt: skip


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _with_headers(send: Send) -> Send:
    """``send`` adding the security headers: on pages all of them, on every answer nosniff."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
            extra = EVERY_ANSWER + (PAGE_HEADERS if content_type.startswith(b"text/html") else [])
            message = {**message, "headers": headers + extra}
        await send(message)

    return sending


async def _refuse(send: Send, error: ApiError) -> None:
    body = json.dumps(error_body(error.status, error.message, error.code)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *EVERY_ANSWER]  # fmt: skip
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def guarded_protocol(header_timeout: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request head does not arrive
    within ``header_timeout`` seconds of the connection opening (or of its previous answer):
    uvicorn itself times out only idle keep-alive connections, so a client sending a header a
    minute would hold a connection forever."""

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0  # of the request head being received
        _tail = b""  # its last bytes, where an end of head may begin

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._expect_head()

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE and not self._head_fits(data):
                self._refuse_head()
                return
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the head is in: the body has its own
                self._stop_timer()
            elif self._head_timer is None:
                self._expect_head()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._stop_timer()  # keep-alive's own timer runs until the next request begins

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            super().connection_lost(exc)

        def _expect_head(self) -> None:
            self._stop_timer()
            self._head_timer = self.loop.call_later(header_timeout, self._too_slow)

        def _stop_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_fits(self, data: bytes) -> bool:
            """Count the head's bytes (h11 bounds only a head that arrives in pieces, so a
            whole oversized head in one read would pass)."""
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            size = self._head_bytes + (end - len(self._tail) + 4 if end >= 0 else len(data))
            if size > MAX_HEADER_BYTES:
                return False
            self._head_bytes, self._tail = (size, window[-3:]) if end < 0 else (0, b"")
            return True

        def _refuse_head(self) -> None:
            message = (f"The request's headers are too large: the limit is {MAX_HEADER_BYTES:,} "
                       "bytes")  # fmt: skip
            body = json.dumps(error_body(431, message, "request_header_fields_too_large"))
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\nconnection: close\r\n"
                + f"content-length: {len(body)}\r\n\r\n{body}".encode()
            )
            self.transport.close()

        def _too_slow(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol
