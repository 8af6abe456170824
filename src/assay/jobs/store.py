"""The job store protocol: what the runner and the server need from durable storage.

SQLite implements it for one machine; PostgreSQL for replicas that share it (``shared``): there
jobs are claimed under leases, ends are broadcast, and results are kept in the database.
Terminal transitions are conditional (only from ADDED or EXECUTING), so a job ends once, even
when a cancel and a finishing worker race.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from assay.counters import Counters
from assay.jobs.model import ApiKey, CachedResult, Job
from assay.jobs.users import Directory


class JobStore(Protocol):
    #: whether other processes share this store (replicas)
    shared: bool
    #: the users, attribute definitions and model roles, kept in the same database
    users: Directory
    #: what the server counts: the store counts its statements, the runner its jobs
    counters: Counters

    def add_jobs(self, jobs: Iterable[Job]) -> None: ...

    def get_jobs(self, ids: Iterable[str]) -> dict[str, Job]: ...

    def start(self, job_id: str, at: float) -> bool:
        """Mark a job EXECUTING; False when it is already terminal."""
        ...

    def finish(
        self,
        job_id: str,
        *,
        status: str,
        at: float,
        summary: dict[str, Any] | None = None,
        cache_metadata: dict[str, Any] | None = None,
        result_file: str | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        cached: CachedResult | None = None,
    ) -> bool:
        """Make a job terminal; False when it already was (the first outcome stands). With
        ``cached``, its result is remembered in the same write, whether or not the job ended
        here (a cancel that won the race does not make the result wrong)."""
        ...

    def requeue(self, job_id: str) -> bool:
        """Put an EXECUTING job back to ADDED without counting the attempt (a graceful stop
        interrupted it; it runs again at the next start)."""
        ...

    def unfinished(self) -> list[Job]:
        """What this process may re-run at start-up: every unfinished job on a store no one
        else uses; none on a shared one, where leases hand jobs over (``claim_orphans``)."""
        ...

    def claim_orphans(self, at: float, limit: int) -> list[Job]:
        """Claim (and mark EXECUTING) jobs whose replica stopped renewing its lease."""
        ...

    def renew(self, ids: Iterable[str]) -> int:
        """Extend the leases on the jobs this process is running."""
        ...

    def listen(self, on_end: Callable[[str], None], on_gap: Callable[[], None]) -> None:
        """Hear about jobs that other processes end (``on_gap``: some may have been missed)."""
        ...

    def save_result(self, name: str, path: Path) -> None:
        """Make a result file readable by every process that shares the store."""
        ...

    def fetch_result(self, name: str, path: Path) -> bool:
        """Bring a result another process saved to ``path``; False when there is none."""
        ...

    def referenced_results(self, names: Iterable[str]) -> set[str]:
        """Which of these result files a job or a cache entry still refers to."""
        ...

    def cached(self, key: str, now: float) -> CachedResult | None: ...

    def remembered(self, key: str, now: float) -> CachedResult | None:
        """The cache entry as this process remembers it, if it does: no round trip (None:
        not remembered, which says nothing of the store)."""
        ...

    def remember(self, result: CachedResult) -> None: ...

    def prune(self, now: float, keep_jobs_since: float) -> list[str]:
        """Forget expired cache entries and old jobs; the result files nothing refers to now."""
        ...

    def add_key(self, key: ApiKey) -> None: ...

    def key_by_hash(self, token_hash: str) -> ApiKey | None: ...

    def api_keys(self) -> list[ApiKey]: ...

    def revoke_key(self, key_id: str, at: float) -> bool: ...

    def close(self) -> None: ...
