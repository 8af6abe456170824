"""The user directory on the shared PostgreSQL job store, so every replica sees the same users:
tables in the store's schema, connections from its pool. Directory writes take one advisory
lock per schema, so a definition change and a user change on two replicas never interleave
(directory writes are rare; queries never take it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from assay.jobs.directory_sql import SqlDirectory, adopt_keys, schema_statements
from assay.jobs.model import ApiKey
from assay.jobs.recent import Recent
from assay.jobs.rows import (
    DEFINITION_COLUMNS,
    KEY_COLUMNS,
    USER_COLUMNS,
    definition_from_row,
    key_from_row,
    user_from_row,
)
from assay.jobs.users import Profile


def _of(table: str, columns: str) -> str:
    return ", ".join(f"{table}.{c.strip()}" for c in columns.split(","))


# A user, every attribute definition and the user's roles in one row (the lists as JSON).
_PROFILE_COLUMNS = (
    f"{_of('u', USER_COLUMNS)}, "
    f"(SELECT json_agg(json_build_array({DEFINITION_COLUMNS}) ORDER BY name) "
    "FROM attribute_definitions), "
    "(SELECT json_agg(json_build_array(model_id, role)) FROM model_roles r "
    "WHERE r.user_id = u.id)"
)
PROFILE = f"SELECT {_PROFILE_COLUMNS} FROM users u WHERE u.id = %s"
SIGN_IN = (
    f"SELECT {_of('k', KEY_COLUMNS)}, {_PROFILE_COLUMNS} "
    "FROM api_keys k LEFT JOIN users u ON u.id = k.user_id WHERE k.token_hash = %s"
)
KEY_WIDTH = KEY_COLUMNS.count(",") + 1


class _Postgres:
    """The shared SQL's ``?`` marks as psycopg's ``%s`` (the statements hold no ``%``)."""

    def __init__(self, conn: psycopg.Connection[TupleRow]) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        return list(self._conn.execute(sql.replace("?", "%s"), params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql.replace("?", "%s"), params).rowcount


def _lock_directory(conn: psycopg.Connection[TupleRow], schema: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"assay:{schema}:directory",))


class PostgresDirectory(SqlDirectory):
    def __init__(
        self,
        pool: ConnectionPool[psycopg.Connection[TupleRow]],
        schema: str,
        *,
        memory_seconds: float = 0.0,
    ) -> None:
        self._pool = pool
        self._schema = schema
        # the keys found and their users' profiles, reused for a few seconds (jobs.recent)
        self._signed_in: Recent[str, tuple[ApiKey, Profile | None]] = Recent(memory_seconds)

    def forget_sign_ins(self) -> None:
        """A key or a user changed through this replica: read them afresh from now on."""
        self._signed_in.forget()

    # One statement each: every request reads these, and on a shared store the round trips
    # cost more than the statements.

    def profile(self, user_id: str) -> Profile | None:
        with self._pool.connection() as conn:
            row = conn.execute(PROFILE, (user_id,)).fetchone()
        return None if row is None else _profile_from(row)

    def sign_in(self, token_hash: str) -> tuple[ApiKey, Profile | None] | None:
        known = self._signed_in.get(token_hash)
        if known is not None:
            return known
        with self._pool.connection() as conn:
            row = conn.execute(SIGN_IN, (token_hash,)).fetchone()
        if row is None:
            return None
        profile = _profile_from(row[KEY_WIDTH:]) if row[KEY_WIDTH] is not None else None
        found = key_from_row(row[:KEY_WIDTH]), profile
        self._signed_in.put(token_hash, found)
        return found

    @contextmanager
    def _read(self) -> Iterator[_Postgres]:
        # Pool connections autocommit: one statement needs no transaction (nor its round trips).
        with self._pool.connection() as conn:
            yield _Postgres(conn)

    @contextmanager
    def _snapshot(self) -> Iterator[_Postgres]:
        with (
            self._pool.connection() as conn,
            conn.transaction(),
        ):
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield _Postgres(conn)

    @contextmanager
    def _write(self) -> Iterator[_Postgres]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                _lock_directory(conn, self._schema)
                yield _Postgres(conn)
        finally:  # committed or not, what was remembered may be stale now
            self.forget_sign_ins()


def _profile_from(row: Sequence[Any]) -> Profile:
    user = user_from_row(row[:-2])
    definitions = tuple(definition_from_row(d) for d in row[-2] or ())
    return Profile(user, definitions, {model: role for model, role in row[-1] or ()})


def upgrade(conn: psycopg.Connection[TupleRow], schema: str, at: float) -> None:
    """Bring a store made by an earlier version up to date, inside the transaction (and the
    schema lock) that creates the store's tables, so replicas starting together take turns and
    the second finds nothing left to do: the jobs' ``user_id`` column, the directory's tables,
    and a user for every key."""
    _lock_directory(conn, schema)
    conn.execute("ALTER TABLE jobs ADD COLUMN IF NOT EXISTS user_id TEXT")
    for statement in schema_statements():
        conn.execute(statement)
    adopt_keys(_Postgres(conn), at)
