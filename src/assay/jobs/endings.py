"""Waiting for jobs to end: the long-polls of ``/query/wait``, and a run's wait for its own job.

Waiters on one job share a future, resolved on the event loop when the job ends: with the job
as it ended when this replica's worker ended it (so that no waiter reads it back), else None
(a cancel, an end on another replica: the waiter reads the store). A future, not an Event:
waiting on it takes no task of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterable

from assay.jobs.model import Job
from assay.jobs.store import JobStore

#: ends kept for a waiter who had not registered yet (a few seconds' worth on a busy server)
_UNWAITED_KEPT = 1024


class JobEndings:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        #: the server's event loop, once the runner is attached to it
        self.loop: asyncio.AbstractEventLoop | None = None
        self._endings: dict[str, asyncio.Future[Job | None]] = {}
        self._waiters: dict[str, int] = {}  # how many are waiting on each of those futures
        # On a store of this process alone, every end reaches the loop through _wake: the ends
        # no one waited for yet are kept here (the latest few), so that a waiter who comes
        # just after need not read the job back to learn it ended before it registered.
        self._unwaited: OrderedDict[str, Job | None] = OrderedDict()
        self._released = False

    def __len__(self) -> int:
        """Jobs someone is waiting on now (a waiter who gave up, or whose client left, no
        longer counts)."""
        return len(self._endings)

    def notify(self, job_id: str, ended: Job | None = None) -> None:
        """A job ended (from any thread): wake its waiters on the loop."""
        if self.loop is None:
            return
        # RuntimeError: the loop has closed (a worker ending after the server stopped)
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._wake, job_id, ended)

    def wake_all_threadsafe(self) -> None:
        """Ends may have been missed (a shared store's notifications had a gap): every waiter
        reads the store again."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._wake_all)

    def release(self) -> None:
        """A stop has begun: answer every long-poll now with what is done (the rest remain,
        and clients poll again once the server is back) instead of holding the stop up."""
        self._released = True
        for ending in self._endings.values():
            _resolve(ending, None)

    def _wake_all(self) -> None:
        for job_id in list(self._endings):
            self._wake(job_id, None)

    def _wake(self, job_id: str, ended: Job | None) -> None:
        ending = self._endings.pop(job_id, None)
        self._waiters.pop(job_id, None)
        if ending is not None:
            _resolve(ending, ended)
        elif not self.store.shared:
            self._unwaited[job_id] = ended
            if len(self._unwaited) > _UNWAITED_KEPT:
                self._unwaited.popitem(last=False)

    def _ending(self, job_id: str, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Job | None]:
        ending = self._endings.get(job_id)
        if ending is None:
            ending = self._endings[job_id] = loop.create_future()
        self._waiters[job_id] = self._waiters.get(job_id, 0) + 1
        return ending

    def _leave(self, endings: dict[str, asyncio.Future[Job | None]]) -> None:
        """A waiter is done with these jobs' futures: one no one else waits on is dropped
        (its job may run for long yet, and ``_wake`` finds no one to tell)."""
        for job_id, ending in endings.items():
            if self._endings.get(job_id) is not ending:
                continue  # woken meanwhile: _wake dropped it
            left = self._waiters[job_id] - 1
            if left:
                self._waiters[job_id] = left
            else:
                del self._waiters[job_id], self._endings[job_id]

    async def wait(
        self, ids: Iterable[str], timeout: float, *, known: Iterable[Job] = ()
    ) -> dict[str, Job]:
        """The jobs, once all are terminal or ``timeout`` seconds have passed. ``known``:
        jobs the caller has just read or made, not read again before waiting."""
        ids = list(dict.fromkeys(ids))
        jobs = {j.id: j for j in known if j.id in ids}
        if len(jobs) < len(ids):
            jobs = self.store.get_jobs(ids)
        pending = [i for i, j in jobs.items() if not j.done]
        if pending and timeout > 0 and not self._released:
            loop = asyncio.get_running_loop()
            endings = {i: self._ending(i, loop) for i in pending}
            try:
                if self.store.shared:
                    # A job may have ended between the read above and registering: read again.
                    jobs = self.store.get_jobs(ids)
                else:  # those ends went through _wake, on this loop, before registering
                    for i in pending:
                        if i in self._unwaited:
                            self._wake(i, self._unwaited.pop(i))
                if any(not jobs[i].done for i in pending):
                    # shared with other waiters: waited on (not cancelled when this one gives up)
                    await asyncio.wait(endings.values(), timeout=timeout)
                    handed = {i: j for i, e in endings.items() if e.done() and (j := e.result())}
                    if len(handed) < len(pending):
                        jobs = self.store.get_jobs(ids)
                    jobs.update(handed)
            finally:
                self._leave(endings)
        return jobs


def _resolve(ending: asyncio.Future[Job | None], ended: Job | None) -> None:
    if not ending.done():
        ending.set_result(ended)
