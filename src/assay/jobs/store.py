"""The job store protocol: what the runner and the server need from durable storage.

SQLite implements it for one machine; a shared PostgreSQL store can implement it for replicas.
Terminal transitions are conditional (only from ADDED or EXECUTING), so a job ends once, even
when a cancel and a finishing worker race.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from assay.jobs.model import ApiKey, CachedResult, Job


class JobStore(Protocol):
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
    ) -> bool:
        """Make a job terminal; False when it already was (the first outcome stands)."""
        ...

    def requeue(self, job_id: str) -> bool:
        """Put an EXECUTING job back to ADDED without counting the attempt (a graceful stop
        interrupted it; it runs again at the next start)."""
        ...

    def unfinished(self) -> list[Job]: ...

    def cached(self, key: str, now: float) -> CachedResult | None: ...

    def remember(self, result: CachedResult) -> None: ...

    def prune(self, now: float, keep_jobs_since: float) -> list[str]:
        """Forget expired cache entries and old jobs; the result files nothing refers to now."""
        ...

    def add_key(self, key: ApiKey) -> None: ...

    def key_by_hash(self, token_hash: str) -> ApiKey | None: ...

    def api_keys(self) -> list[ApiKey]: ...

    def revoke_key(self, key_id: str, at: float) -> bool: ...

    def user_exists(self, user_id: str) -> bool: ...

    def close(self) -> None: ...
