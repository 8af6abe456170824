"""Job, key and user-directory records as table rows: the one column order and JSON encoding
both job stores (SQLite and PostgreSQL) use, so a record reads back the same from either."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from assay.jobs.model import ApiKey, CachedResult, Job
from assay.jobs.users import AttributeDef, User

# user_id comes last: it was added to existing tables (ALTER TABLE), after the others.
JOB_COLUMNS = (
    "id, status, client_result_id, model_id, key_id, request, summary, cache_metadata, "
    "result_file, error_type, error_message, created_at, started_at, finished_at, attempts, "
    "user_id"
)
CACHE_COLUMNS = "key, result_file, summary, num_rows, bytes, computed_at, expires_at"
KEY_COLUMNS = "id, kind, token_hash, prefix, user_id, user_email, label, created_at, revoked_at"
USER_COLUMNS = (
    "id, user_name, user_name_key, display_name, active, org_admin, attributes, created_at, "
    "updated_at"
)
DEFINITION_COLUMNS = (
    "id, name, label, type, multiple_values, default_value, description, created_at"
)


def placeholders(columns: str, mark: str) -> str:
    """One parameter mark (``?`` or ``%s``) per column of ``columns``."""
    return ", ".join([mark] * (columns.count(",") + 1))


def dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def job_values(j: Job) -> tuple[Any, ...]:
    """A job's values in ``JOB_COLUMNS`` order."""
    return (j.id, j.status, j.client_result_id, j.model_id, j.key_id, dump(j.request),
            dump(j.summary), dump(j.cache_metadata), j.result_file, j.error_type,
            j.error_message, j.created_at, j.started_at, j.finished_at, j.attempts,
            j.user_id)  # fmt: skip


def job_from_row(row: Sequence[Any]) -> Job:
    return Job(
        id=row[0], status=row[1], client_result_id=row[2], model_id=row[3], key_id=row[4],
        request=json.loads(row[5]), summary=load(row[6]), cache_metadata=load(row[7]),
        result_file=row[8], error_type=row[9], error_message=row[10], created_at=row[11],
        started_at=row[12], finished_at=row[13], attempts=row[14], user_id=row[15],
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


def user_name_key(user_name: str) -> str:
    """What makes two userNames the same user: case does not count (``Ann@X.com`` is
    ``ann@x.com``), so the unique index is on this, not on the name as given."""
    return user_name.strip().lower()


def dump_attributes(attributes: Mapping[str, Sequence[str]]) -> str:
    """A user's values as ``{name: [text, ...]}``, names sorted: the same user is always the
    same text."""
    return json.dumps({name: list(attributes[name]) for name in sorted(attributes)},
                      separators=(",", ":"))  # fmt: skip


def user_values(user: User) -> tuple[Any, ...]:
    """A user's values in ``USER_COLUMNS`` order."""
    return (user.id, user.user_name, user_name_key(user.user_name), user.display_name,
            user.active, user.org_admin, dump_attributes(user.attributes), user.created_at,
            user.updated_at)  # fmt: skip


def user_from_row(row: Sequence[Any]) -> User:
    attributes = {name: tuple(values) for name, values in json.loads(row[6]).items()}
    return User(
        id=row[0], user_name=row[1], display_name=row[3], active=bool(row[4]),
        org_admin=bool(row[5]), attributes=attributes, created_at=row[7], updated_at=row[8],
    )  # fmt: skip


def definition_values(d: AttributeDef) -> tuple[Any, ...]:
    """A custom attribute definition's values in ``DEFINITION_COLUMNS`` order."""
    default = None if d.default_value is None else dump(list(d.default_value))
    return (d.id, d.name, d.label, d.type, d.multiple_values, default, d.description,
            d.created_at)  # fmt: skip


def definition_from_row(row: Sequence[Any]) -> AttributeDef:
    default = load(row[5])
    return AttributeDef(
        id=row[0], name=row[1], label=row[2], type=row[3], multiple_values=bool(row[4]),
        default_value=None if default is None else tuple(default), description=row[6],
        created_at=row[7],
    )  # fmt: skip
