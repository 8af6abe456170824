"""Chat page sessions, kept in the job store beside the keys they were opened with.

A browser signs in once with an API key and from then on holds only a random session id.
The store keeps the id's SHA-256 hash, never the id, so a copy of the store file opens no
session. A session names its key: it is only as good as the key, so a revoked key (or a
removed user) ends every session opened with it on the next request, without a sweep.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from assay.jobs.model import ApiKey
from assay.jobs.rows import KEY_COLUMNS, key_from_row

# Both databases run these (SQLite and PostgreSQL), through the directory's schema upgrade.
SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_sessions (
    id_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    user_id TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_sessions_key ON chat_sessions (key_id);
CREATE INDEX IF NOT EXISTS chat_sessions_expiry ON chat_sessions (expires_at);
"""
_COLUMNS = "id_hash, key_id, user_id, created_at, expires_at"


@dataclass(frozen=True, slots=True)
class ChatSession:
    """A signed-in browser: which key it signed in with, as which user, until when."""

    id_hash: str
    key_id: str
    user_id: str | None
    created_at: float
    expires_at: float


class _Sql(Protocol):
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...


def session_statements() -> Iterator[str]:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            yield statement


def open_session(sql: _Sql, session: ChatSession) -> None:
    """Store a new session; expired ones go at the same time (sign-ins are rare, so this
    keeps the table small without a background sweep)."""
    sql.run("DELETE FROM chat_sessions WHERE expires_at <= ?", (session.created_at,))
    sql.run(
        f"INSERT INTO chat_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
        (session.id_hash, session.key_id, session.user_id, session.created_at,
         session.expires_at),
    )  # fmt: skip


def find_session(sql: _Sql, id_hash: str, now: float) -> tuple[ChatSession, ApiKey] | None:
    """The live session with this hash and its key as stored now (revoked or not: the caller
    decides); None when there is none, it expired, or its key is gone."""
    rows = sql.rows(
        f"SELECT {_COLUMNS} FROM chat_sessions WHERE id_hash = ? AND expires_at > ?",
        (id_hash, now),
    )
    if not rows:
        return None
    session = ChatSession(*rows[0])
    keys = sql.rows(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?", (session.key_id,))
    return (session, key_from_row(keys[0])) if keys else None


def end_session(sql: _Sql, id_hash: str) -> bool:
    return sql.run("DELETE FROM chat_sessions WHERE id_hash = ?", (id_hash,)) == 1
