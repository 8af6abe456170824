"""A streamed answer (``server.transfer.released``) goes out in parts of about ``SEND_BYTES``:
whole chunks, in order, nothing lost or repeated, one thread hop per part, and the source
generator closed when the response stops, whether it finished or not."""

from __future__ import annotations

import asyncio
from collections.abc import Generator

from assay.server.transfer import SEND_BYTES, released


def source(sizes: list[int], closed: list[bool]) -> Generator[bytes, None, None]:
    try:
        for i, size in enumerate(sizes):
            yield bytes([65 + i % 26]) * size
    finally:
        closed.append(True)


async def collect(
    chunks: Generator[bytes, None, None], stop_after: int | None = None
) -> list[bytes]:
    parts = []
    stream = released(chunks)
    async for part in stream:
        parts.append(part)
        if stop_after is not None and len(parts) == stop_after:
            break
    await stream.aclose()  # what Starlette does when the response ends or the client leaves
    return parts


def test_parts_gather_whole_chunks_in_order_up_to_the_send_size() -> None:
    sizes = [100, 200, SEND_BYTES - 300, 50, 3 * SEND_BYTES // 2, 10]
    closed: list[bool] = []
    parts = asyncio.run(collect(source(sizes, closed)))
    expected = b"".join(bytes([65 + i % 26]) * size for i, size in enumerate(sizes))
    assert b"".join(parts) == expected
    # the first three chunks fill the first part exactly; then 50 bytes plus the big chunk
    # pass it; the last chunk is what is left
    assert [len(p) for p in parts] == [SEND_BYTES, 50 + 3 * SEND_BYTES // 2, 10]
    assert closed == [True]


def test_many_small_lines_are_one_part() -> None:
    closed: list[bool] = []
    parts = asyncio.run(collect(source([40] * 1000, closed)))
    assert [len(p) for p in parts] == [40_000]
    assert closed == [True]


def test_a_response_stopped_early_closes_the_source() -> None:
    closed: list[bool] = []
    parts = asyncio.run(collect(source([SEND_BYTES] * 5, closed), stop_after=2))
    assert len(parts) == 2
    assert closed == [True]
