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
from assay.jobs.model import ApiKey
from assay.jobs.recent import MAX_ENTRIES
from assay.jobs.users import Profile


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
    """Every request signs in: the keys found and their users' profiles are kept for as long
    as nothing wrote the directory, which is exact, not a few seconds' memory as on the
    shared store. This connection's own writes forget them (``forget_sign_ins``), and a
    commit by any other connection (``assay users`` or ``assay keys`` in another process)
    changes ``PRAGMA data_version``, which each sign-in reads first: one statement instead
    of a transaction of four."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock
        self._signed_in: dict[str, tuple[ApiKey, Profile | None]] = {}
        self._version: int | None = None
        self._generation = 0  # moved by every forget: a read made before it is not kept

    def forget_sign_ins(self) -> None:
        """A key or a user changed on this connection. (Called with the store's lock held.)"""
        self._generation += 1
        self._signed_in.clear()

    def sign_in(self, token_hash: str) -> tuple[ApiKey, Profile | None] | None:
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:  # another connection committed since: forget all
                self._version = version
                self._signed_in.clear()
            known = self._signed_in.get(token_hash)
            generation = self._generation
        if known is not None:
            return known
        found = super().sign_in(token_hash)
        if found is not None:  # only what was found: unknown tokens cannot fill the memory
            with self._lock:
                if generation == self._generation and version == self._version:
                    if len(self._signed_in) >= MAX_ENTRIES:
                        self._signed_in.clear()
                    self._signed_in[token_hash] = found
        return found

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
        with self._lock:
            try:
                with _transaction(self._db, "BEGIN IMMEDIATE") as sql:
                    yield sql
            finally:  # committed or not, what was kept may be stale now
                self.forget_sign_ins()


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
