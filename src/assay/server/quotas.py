"""What one key may hold open at once: long-polls, and queued or running jobs (query jobs and
AI jobs). Past either bound a request is answered 429 with ``Retry-After``, as a rate limit
is, so one key's client cannot take every worker or connection from everyone else.

Counts are this process's own: behind several replicas each one bounds what it holds.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

from fastapi import Request

from assay.server.errors import ApiError

T = TypeVar("T")


class KeyQuotas:
    def __init__(self, *, max_waits: int, max_jobs: int) -> None:
        self.max_waits = max_waits
        self.max_jobs = max_jobs
        self._waits: Counter[str] = Counter()
        self._jobs: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def waiting(self, key_id: str) -> Iterator[None]:
        """Hold one of the key's long-poll places for the length of the block."""
        with self._lock:
            if self.max_waits > 0 and self._waits[key_id] >= self.max_waits:
                raise _busy(f"This API key already holds {self.max_waits} open long-polls "
                            "(setting max_waits_per_key): wait for one to answer")  # fmt: skip
            self._waits[key_id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._waits[key_id] -= 1
                if not self._waits[key_id]:
                    del self._waits[key_id]

    def admit_job(self, key_id: str, still_open: Callable[[Iterable[str]], set[str]]) -> None:
        """Refuse a new job when the key already has ``max_jobs`` queued or running
        (``still_open`` tells which of its earlier jobs have not ended)."""
        if self.max_jobs <= 0:
            return
        with self._lock:
            held = set(self._jobs.get(key_id, ()))
        if len(held) < self.max_jobs:
            return
        open_now = still_open(held)
        with self._lock:
            current = self._jobs.get(key_id, set())
            current &= open_now | (current - held)  # keep ids added meanwhile
            self._jobs[key_id] = current
            if len(current) >= self.max_jobs:
                raise _busy(f"This API key already has {self.max_jobs} queries or AI jobs "
                            "queued or running (setting max_jobs_per_key): wait for one to "
                            "finish")  # fmt: skip

    def track_job(self, key_id: str, job_id: str) -> None:
        """Count a job that did not end at once against its key."""
        with self._lock:
            self._jobs.setdefault(key_id, set()).add(job_id)

    def release_job(self, key_id: str, job_id: str) -> None:
        """A tracked job was seen to end: it stops counting now, so a key whose jobs end
        while their requests wait (most of them) never needs its held ids read back."""
        with self._lock:
            held = self._jobs.get(key_id)
            if held is not None:
                held.discard(job_id)
                if not held:
                    del self._jobs[key_id]


def _busy(message: str) -> ApiError:
    return ApiError(429, message, code="too_many_requests", headers={"Retry-After": "1"})


async def unless_gone(request: Request, work: Awaitable[T]) -> T | None:
    """``work``'s result, or None as soon as the client has gone: a long-poll whose client left
    must not keep its place (and its key's quota) until the poll would have ended.

    ``work`` runs in the caller's task, and a watcher cancels that task if the client leaves:
    a task of its own for ``work`` would cost every answer two more turns of the event loop
    (its end, then the wait for it) between the job's end and the response."""
    task = asyncio.current_task()
    if task is None:  # (never: a request is always handled in a task)
        raise RuntimeError("unless_gone must be awaited in a task")
    left = False

    async def watch() -> None:
        nonlocal left
        with suppress(Exception):  # a receive that fails: the client is gone too
            await _client_gone(request)
        left = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if left and task.uncancel() == 0:  # the watcher's cancel alone: the client left
            return None
        raise  # a cancel from elsewhere (the server stopping) goes on
    finally:
        watcher.cancel()


async def _client_gone(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
