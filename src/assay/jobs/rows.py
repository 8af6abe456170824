"""Job and key records as table rows: the one column order and JSON encoding both job stores
(SQLite and PostgreSQL) use, so a record reads back the same from either."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from assay.jobs.model import ApiKey, CachedResult, Job

JOB_COLUMNS = (
    "id, status, client_result_id, model_id, key_id, request, summary, cache_metadata, "
    "result_file, error_type, error_message, created_at, started_at, finished_at, attempts"
)
CACHE_COLUMNS = "key, result_file, summary, num_rows, bytes, computed_at, expires_at"
KEY_COLUMNS = "id, kind, token_hash, prefix, user_id, user_email, label, created_at, revoked_at"


def dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def job_values(j: Job) -> tuple[Any, ...]:
    """A job's values in ``JOB_COLUMNS`` order."""
    return (j.id, j.status, j.client_result_id, j.model_id, j.key_id, dump(j.request),
            dump(j.summary), dump(j.cache_metadata), j.result_file, j.error_type,
            j.error_message, j.created_at, j.started_at, j.finished_at, j.attempts)  # fmt: skip


def job_from_row(row: Sequence[Any]) -> Job:
    return Job(
        id=row[0], status=row[1], client_result_id=row[2], model_id=row[3], key_id=row[4],
        request=json.loads(row[5]), summary=load(row[6]), cache_metadata=load(row[7]),
        result_file=row[8], error_type=row[9], error_message=row[10], created_at=row[11],
        started_at=row[12], finished_at=row[13], attempts=row[14],
    )  # fmt: skip


def key_values(key: ApiKey) -> tuple[Any, ...]:
    """A key's values in ``KEY_COLUMNS`` order."""
    return (key.id, key.kind, key.token_hash, key.prefix, key.user_id, key.user_email,
            key.label, key.created_at, key.revoked_at)  # fmt: skip


def key_from_row(row: Sequence[Any]) -> ApiKey:
    return ApiKey(
        id=row[0], kind=row[1], token_hash=row[2], prefix=row[3], user_id=row[4],
        user_email=row[5], label=row[6], created_at=row[7], revoked_at=row[8],
    )  # fmt: skip


def cached_values(result: CachedResult) -> tuple[Any, ...]:
    """A cache entry's values in ``CACHE_COLUMNS`` order."""
    return (result.key, result.result_file, dump(result.summary), result.num_rows,
            result.bytes, result.computed_at, result.expires_at)  # fmt: skip


def cached_from_row(row: Sequence[Any]) -> CachedResult:
    return CachedResult(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], row[6])
