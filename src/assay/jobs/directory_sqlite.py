"""The user directory on the SQLite job store: the store's one connection and lock, so a
directory change and a job or key write never interleave; ``BEGIN IMMEDIATE`` so another
process on the same file (``assay users`` while ``assay serve`` runs) waits its turn."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from assay.jobs.directory_sql import SqlDirectory, adopt_keys, schema_statements


class _SQLite:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        return self._db.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, params).rowcount


@contextmanager
def _transaction(db: sqlite3.Connection, begin: str) -> Iterator[_SQLite]:
    db.execute(begin)
    try:
        yield _SQLite(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class SQLiteDirectory(SqlDirectory):
    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock

    @contextmanager
    def _read(self) -> Iterator[_SQLite]:
        with self._lock:
            yield _SQLite(self._db)

    @contextmanager
    def _snapshot(self) -> Iterator[_SQLite]:
        # A read transaction: a page and its total come from the same snapshot.
        with self._lock, _transaction(self._db, "BEGIN") as sql:
            yield sql

    @contextmanager
    def _write(self) -> Iterator[_SQLite]:
        with self._lock, _transaction(self._db, "BEGIN IMMEDIATE") as sql:
            yield sql


def upgrade(db: sqlite3.Connection, at: float) -> None:
    """Bring a job store file made by any earlier version up to date, in one transaction (two
    processes opening it at once take turns): the jobs' ``user_id`` column, the directory's
    tables, and a user for every key."""
    with _transaction(db, "BEGIN IMMEDIATE") as sql:
        columns = {row[1] for row in sql.rows("PRAGMA table_info(jobs)")}
        if "user_id" not in columns:
            sql.run("ALTER TABLE jobs ADD COLUMN user_id TEXT")
        for statement in schema_statements():
            sql.run(statement)
        adopt_keys(sql, at)
