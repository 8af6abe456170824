"""How an answer's bytes reach the client (server layer): small answers in one body; large
ones made in a worker thread in parts of about 1 MiB, with an exact Content-Length; gzipped
when the client accepts gzip and the ``gzip_answers`` setting allows it for that client; and
released the moment the client leaves.

Why gzip is off for clients on loopback by default: there the wire costs less than the
compression. A 1M-row result's 59 MB of base64 take about 60 ms to cross loopback and 370 ms of
CPU to gzip even at level 1, and the client then spends more again inflating it
(bench/README.md, "Large results at wire speed"). Across a real network the same answer
shrinks to a sixth, which pays from well above 100 Mbit/s down.
"""

from __future__ import annotations

import ipaddress
import logging
import zlib
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from dataclasses import dataclass

import anyio
from starlette.datastructures import Headers
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from assay.server.observe import REQUEST_ID

logger = logging.getLogger(__name__)

#: A streamed answer goes out in parts of about this size (a part holds whole chunks).
SEND_BYTES = 1024 * 1024
#: gzip's fastest level: level 6 (zlib's default) takes 3.4x the CPU for a few percent less.
GZIP_LEVEL = 1
#: Answers smaller than this are not worth compressing.
GZIP_MIN_BYTES = 1024


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (``gzip;q=0`` refuses it, ``*`` admits
    it unless gzip itself is refused)."""
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if name:
            weights[name.lower()] = weight
    for name in ("gzip", "x-gzip", "*"):
        if name in weights:
            return weights[name] > 0
    return False


def on_loopback(scope: Scope) -> bool:
    """Whether the client is on this machine (no address, as on a Unix socket, counts)."""
    client = scope.get("client")
    if not client:
        return True
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def gzip_wanted(scope: Scope, policy: str) -> bool:
    """Whether to gzip this answer under the ``gzip_answers`` setting (``remote``: for
    clients not on loopback; ``always``; ``never``), when the client admits gzip at all."""
    if policy == "never":
        return False
    if not accepts_gzip(Headers(scope=scope).get("accept-encoding", "")):
        return False
    return policy == "always" or not on_loopback(scope)


def _policy_of(scope: Scope) -> str:
    """The server's ``gzip_answers`` setting (the app's state holds the settings, as every
    route reads them)."""
    policy: str = scope["app"].state.assay.settings.gzip_answers
    return policy


class PartsResponse(Response):
    """An answer of ``length`` bytes made by ``make`` (a generator of chunks): built in one
    body at once when ``stream`` is false, else made in a worker thread part by part while
    the event loop sends the previous part. Gzip is decided per request (``gzip_wanted``)."""

    def __init__(
        self,
        make: Callable[[], Generator[bytes, None, None]],
        length: int,
        *,
        media_type: str,
        stream: bool,
    ) -> None:
        self._make = make
        self._stream = stream
        body = b"" if stream else b"".join(make())
        super().__init__(body, media_type=media_type, headers={"content-length": str(length)})
        self.length = length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        compress = self.length >= GZIP_MIN_BYTES and gzip_wanted(scope, _policy_of(scope))
        self.headers["vary"] = "Accept-Encoding"
        if not self._stream:
            if compress:
                self.body = zlib.compress(self.body, GZIP_LEVEL, wbits=31)
                self.headers["content-encoding"] = "gzip"
                self.headers["content-length"] = str(len(self.body))
            await super().__call__(scope, receive, send)
            return
        chunks = self._make()
        if compress:
            chunks = gzipped(chunks)
            del self.headers["content-length"]  # unknown ahead: sent chunked
            self.headers["content-encoding"] = "gzip"
        progress = Progress()
        parts = released(chunks, progress)
        streaming = StreamingResponse(parts, self.status_code, media_type=self.media_type)
        streaming.raw_headers = self.raw_headers
        try:
            await streaming(scope, receive, send)
        finally:
            # The part in hand finishes first; then the chunks are closed, and with them the
            # result file: at once, not whenever the collector finds the generator.
            with anyio.CancelScope(shield=True):
                await parts.aclose()
        # (an error while sending raised above, and uvicorn logs it: this is a departure)
        if not progress.finished:
            fields = {"event": "client_left", "request_id": scope.get(REQUEST_ID),
                      "sent_bytes": progress.sent}  # fmt: skip
            logger.info("the client left after %d bytes of the answer to %s", progress.sent,
                        scope.get("path"), extra={"fields": fields})  # fmt: skip


def gzipped(chunks: Generator[bytes, None, None]) -> Generator[bytes, None, None]:
    """``chunks`` as one gzip stream (compressed where they are made: in the worker thread)."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    try:
        for chunk in chunks:
            if out := compressor.compress(chunk):
                yield out
        yield compressor.flush()
    finally:
        chunks.close()


@dataclass
class Progress:
    """How far ``released`` got: bytes handed out, and whether its chunks ran out."""

    sent: int = 0
    finished: bool = False


async def released(
    chunks: Generator[bytes, None, None], progress: Progress | None = None
) -> AsyncGenerator[bytes, None]:
    """``chunks``, read in a worker thread about ``SEND_BYTES`` at a time, and closed the
    moment the response stops, finished or not: a client that leaves mid-result releases the
    result file and its buffers at once, not whenever the garbage collector gets to a dropped
    generator."""
    progress = progress or Progress()
    try:
        while True:
            # Not abandoned on cancel: when the client leaves, the part being read finishes
            # first, so the generator is idle when it is closed below.
            part = await anyio.to_thread.run_sync(_take, chunks, SEND_BYTES)
            if not part:
                progress.finished = True
                return
            yield part
            progress.sent += len(part)
    finally:
        chunks.close()


def _take(chunks: Iterator[bytes], size: int) -> bytes:
    """The next ``size`` bytes or so of ``chunks`` (all that is left, at the end): one thread
    hop and one socket write per part, not per line or per file chunk."""
    parts: list[bytes] = []
    taken = 0
    for chunk in chunks:
        parts.append(chunk)
        taken += len(chunk)
        if taken >= size:
            break
    return b"".join(parts)
