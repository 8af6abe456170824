"""Job records and the API keys that submit them: frozen values, changed only by the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JobStatus = Literal["ADDED", "EXECUTING", "COMPLETE", "FAILED", "PLANNED"]
TERMINAL: frozenset[str] = frozenset({"COMPLETE", "FAILED", "PLANNED"})
KeyKind = Literal["org", "pat"]


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    status: JobStatus
    client_result_id: str
    model_id: str
    #: what was asked: {"query": {...}, "cache": ..., "planOnly": ...}
    request: dict[str, Any]
    created_at: float
    key_id: str | None = None
    #: the user the job runs as (its owner: only they, and organization keys, may read it)
    user_id: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    #: Omni's summary (display_sql, fields, total_rows, cache_type ...) once known
    summary: dict[str, Any] | None = None
    cache_metadata: dict[str, Any] | None = None
    #: file name of the Arrow IPC stream, inside the results folder
    result_file: str | None = None
    error_type: str | None = None
    error_message: str | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class CachedResult:
    """A result reusable by any query that compiles to the same SQL on the same model version."""

    key: str
    result_file: str
    summary: dict[str, Any]
    num_rows: int
    bytes: int
    computed_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An organization key (acts for anyone) or a personal access token (acts for its user).
    Only the token's hash is stored; the token is shown once, when created."""

    id: str
    kind: KeyKind
    token_hash: str
    created_at: float
    prefix: str = ""
    user_id: str | None = None
    user_email: str | None = None
    label: str | None = None
    revoked_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
