"""The job store on SQLite: one file in Assay's home, in WAL mode so readers never wait for
the writer. One connection, used under a lock from the event loop and the worker threads;
every statement is short. The user directory (``users``) lives in the same file, on the same
connection."""

from __future__ import annotations

import os
import shlex
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assay.counters import STORE_ROUND_TRIPS, Counters
from assay.errors import ConfigError, StoreDamaged
from assay.jobs.directory_sqlite import SQLiteDirectory, upgrade
from assay.jobs.model import ApiKey, CachedResult, Job
from assay.jobs.rows import (
    CACHE_COLUMNS,
    JOB_COLUMNS,
    KEY_COLUMNS,
    cached_from_row,
    cached_values,
    dump,
    job_from_row,
    job_values,
    key_from_row,
    key_values,
    placeholders,
)
from assay.jobs.users import Directory
from assay.jobs.wal_checkpoints import CHECKPOINT_SECONDS, WalCheckpointer

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    client_result_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    key_id TEXT,
    request TEXT NOT NULL,
    summary TEXT,
    cache_metadata TEXT,
    result_file TEXT,
    error_type TEXT,
    error_message TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    user_id TEXT
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (status) WHERE status IN ('ADDED', 'EXECUTING');
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE TABLE IF NOT EXISTS result_cache (
    key TEXT PRIMARY KEY,
    result_file TEXT NOT NULL,
    summary TEXT NOT NULL,
    num_rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    computed_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    user_id TEXT,
    user_email TEXT,
    label TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""


# SQLite's primary result codes that mean the file's content is damaged: SQLITE_CORRUPT
# ("database disk image is malformed") and SQLITE_NOTADB ("file is not a database").
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
# How many problems quick_check lists at most: enough to show what is wrong, and it stops
# scanning once it has found that many.
_CHECK_LIMIT = 5
# The write-ahead log's size kept once it has been checkpointed (SQLite's journal_size_limit)
_LOG_KEPT_BYTES = 64 * 1024 * 1024
# An empty store file older than this was emptied (truncated); a younger one may be a store
# another process is creating this very moment (it writes the header right after).
_EMPTY_GRACE_SECONDS = 10.0


_INSERT_JOB = f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({placeholders(JOB_COLUMNS, '?')})"


class CountedConnection(sqlite3.Connection):
    """A connection that counts the statements it runs, once given ``counters`` (the store's
    round-trips metric: on SQLite they are calls into the library, not network trips)."""

    counters: Counters | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.counters is not None:
            self.counters.add(STORE_ROUND_TRIPS, "sqlite")
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        if self.counters is not None:
            self.counters.add(STORE_ROUND_TRIPS, "sqlite")
        return super().executemany(sql, parameters)


def open_checked(path: Path) -> sqlite3.Connection:
    """A connection to the store file at ``path`` (made when new), in WAL mode, after
    ``PRAGMA quick_check``: a damaged file stops start-up with ``StoreDamaged`` instead of
    failing requests one by one later, or having new writes land on broken pages.

    quick_check reads every page and checks the b-trees' structure, but not that indexes
    match their tables (integrity_check does, at about twice the cost): cheap enough for every
    start (about 10 ms on a store of 10,000 jobs, see docs/deployment.md). The job store and
    the AI store open the same file, each through here."""
    with opening(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if _emptied(path):  # SQLite would take it for a new store: every key silently gone
            raise StoreDamaged(damaged_message(path, "it is empty (0 bytes): it was truncated"))
        db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, factory=CountedConnection
        )
        try:
            db.execute("PRAGMA busy_timeout=5000")  # first: quick_check may wait for a writer
            problems = _quick_check(db)
            if problems != ["ok"]:
                said = "; ".join(" ".join(p.split()) for p in problems)
                raise StoreDamaged(damaged_message(path, f"SQLite says: {said}"))
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash (our case); only an OS
            # crash can lose the last transactions.
            db.execute("PRAGMA synchronous=NORMAL")
            # No commit checkpoints the log (and waits for its fsyncs): the job store's
            # checkpointer thread does (wal_checkpoints.py). A log that grew large is cut
            # back to this size when it starts again.
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.execute(f"PRAGMA journal_size_limit={_LOG_KEPT_BYTES}")
        except BaseException:
            db.close()
            raise
    return db


def _emptied(path: Path) -> bool:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    return stat.st_size == 0 and time.time() - stat.st_mtime > _EMPTY_GRACE_SECONDS


def _quick_check(db: sqlite3.Connection) -> list[str]:
    """quick_check's findings (``["ok"]`` when none), with the error it may end on: on some
    damage it lists pages, then fails itself ("database disk image is malformed")."""
    found: list[str] = []
    try:
        for row in db.execute(f"PRAGMA quick_check({_CHECK_LIMIT})"):
            found.append(str(row[0]))
    except sqlite3.DatabaseError as exc:
        if not _is_damage(exc):
            raise
        found.append(str(exc))
    return found


def _is_damage(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in _DAMAGE_CODES


@contextmanager
def opening(path: Path) -> Iterator[None]:
    """SQLite's and the system's errors while opening the store become ``ConfigError``;
    those that say the file is damaged become ``StoreDamaged``, with how to restore it."""
    try:
        yield
    except sqlite3.Error as exc:
        if _is_damage(exc):
            raise StoreDamaged(damaged_message(path, f"SQLite says: {exc}")) from exc
        raise ConfigError(f"Cannot open the job store {path}: {exc}") from exc
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"Cannot open the job store {path}: {reason}") from exc


# ``.dump`` writes what it can still read and ends in ROLLBACK when it met damage; turned
# into COMMIT, the readable rows are kept. (``.recover`` reads more, but needs a sqlite3
# built with the sqlite_dbpage table, which Debian's 3.40 is not: there it fails.)
_RECOVER = "sqlite3 {old} .dump | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' | sqlite3 {new}"


def damaged_message(path: Path, problem: str) -> str:
    """What is wrong with the store file and how to get a working one back, one command a
    line (to be pasted as they are). The -wal file goes with the store, renamed to match its
    new name: it may hold the latest commits, which the recovery then reads too; left behind,
    SQLite could apply it to the restored file."""
    db, aside = shlex.quote(str(path)), shlex.quote(f"{path}.damaged")
    return (
        f"The job store {path} is damaged; {problem}.\n"
        "Assay does not start on a damaged store. Stop every Assay process using it, then "
        "move it aside with its -wal and -shm files (those that exist):\n"
        f"  mv {db} {aside}\n"
        f"  mv {db}-wal {aside}-wal\n"
        f"  mv {db}-shm {aside}-shm\n"
        f"and restore your latest backup to {path}. Without a backup, copy what SQLite can "
        "still read into a new store (rows on damaged pages are lost; with no file at all, "
        "Assay starts on a new, empty store):\n"
        f"  {_RECOVER.format(old=aside, new=db)}"
    )


# a result in the cache (the runner writes it with the job's end, in one transaction)
_REMEMBER = "INSERT OR REPLACE INTO result_cache VALUES (?, ?, ?, ?, ?, ?, ?)"


class SQLiteJobStore:
    shared = False

    def __init__(
        self,
        path: Path,
        *,
        counters: Counters | None = None,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        self._db = open_checked(path)
        with opening(path):
            self._db.executescript(SCHEMA)
            upgrade(self._db, time.time())
        #: what this server counts (its statements here among them): see assay.counters
        self.counters = counters or Counters()
        assert isinstance(self._db, CountedConnection)
        self._db.counters = self.counters
        self._lock = threading.Lock()
        self.path = path
        self._directory = SQLiteDirectory(self._db, self._lock)
        self.users: Directory = self._directory
        self._checkpoints = WalCheckpointer(path, checkpoint_seconds)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE takes the write lock up front (no read-then-write upgrade that
        another process's commit could make fail), and any error rolls back, so the shared
        connection is never left inside a transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ jobs

    def add_jobs(self, jobs: Iterable[Job]) -> None:
        rows = [job_values(j) for j in jobs]
        with self._lock:
            if len(rows) == 1:  # one statement is its own transaction: no BEGIN, no COMMIT
                self._db.execute(_INSERT_JOB, rows[0])
                return
            with self._transaction():
                self._db.executemany(_INSERT_JOB, rows)

    def get_jobs(self, ids: Iterable[str]) -> dict[str, Job]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({marks})", wanted
            ).fetchall()
        return {row[0]: job_from_row(row) for row in rows}

    def start(self, job_id: str, at: float) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status = 'EXECUTING', started_at = ?, attempts = attempts + 1 "
                "WHERE id = ? AND status IN ('ADDED', 'EXECUTING')",
                (at, job_id),
            )
        return cur.rowcount == 1

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
        with self._lock, self._transaction():
            if cached is not None:
                self._db.execute(_REMEMBER, cached_values(cached))
            cur = self._db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, summary = ?, cache_metadata = ?, "
                "result_file = ?, error_type = ?, error_message = ? "
                "WHERE id = ? AND status IN ('ADDED', 'EXECUTING')",
                (status, at, dump(summary), dump(cache_metadata), result_file, error_type,
                 error_message, job_id),
            )  # fmt: skip
        return cur.rowcount == 1

    def requeue(self, job_id: str) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status = 'ADDED', started_at = NULL, "
                "attempts = MAX(attempts - 1, 0) WHERE id = ? AND status = 'EXECUTING'",
                (job_id,),
            )
        return cur.rowcount == 1

    def unfinished(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE status IN ('ADDED', 'EXECUTING') "
                "ORDER BY created_at"
            ).fetchall()
        return [job_from_row(r) for r in rows]

    # One process owns this store: nothing to claim, renew, broadcast or copy.

    def claim_orphans(self, at: float, limit: int) -> list[Job]:
        return []

    def renew(self, ids: Iterable[str]) -> int:
        return 0

    def listen(self, on_end: Callable[[str], None], on_gap: Callable[[], None]) -> None:
        return None

    def save_result(self, name: str, path: Path) -> None:
        return None

    def fetch_result(self, name: str, path: Path) -> bool:
        return path.exists()

    def referenced_results(self, names: Iterable[str]) -> set[str]:
        wanted = list(names)
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(
                f"SELECT result_file FROM jobs WHERE result_file IN ({marks}) "
                f"UNION SELECT result_file FROM result_cache WHERE result_file IN ({marks})",
                [*wanted, *wanted],
            ).fetchall()
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ result cache

    def cached(self, key: str, now: float) -> CachedResult | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {CACHE_COLUMNS} FROM result_cache WHERE key = ? AND expires_at > ?",
                (key, now),
            ).fetchone()
        if row is None:
            return None
        return cached_from_row(row)

    def remembered(self, key: str, now: float) -> CachedResult | None:
        return None  # nothing is kept apart from the file: reading it is no round trip

    def remember(self, result: CachedResult) -> None:
        with self._lock:
            self._db.execute(_REMEMBER, cached_values(result))

    def prune(self, now: float, keep_jobs_since: float) -> list[str]:
        with self._lock, self._transaction():
            before = {
                r[0]
                for r in self._db.execute(
                    "SELECT result_file FROM jobs WHERE result_file IS NOT NULL "
                    "UNION SELECT result_file FROM result_cache"
                )
            }
            self._db.execute("DELETE FROM result_cache WHERE expires_at <= ?", (now,))
            self._db.execute(
                "DELETE FROM jobs WHERE created_at < ? AND status NOT IN ('ADDED', 'EXECUTING')",
                (keep_jobs_since,),
            )
            after = {
                r[0]
                for r in self._db.execute(
                    "SELECT result_file FROM jobs WHERE result_file IS NOT NULL "
                    "UNION SELECT result_file FROM result_cache"
                )
            }
        return sorted(before - after)

    # ------------------------------------------------------------------ API keys

    def add_key(self, key: ApiKey) -> None:
        with self._lock:
            self._db.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ({placeholders(KEY_COLUMNS, '?')})",
                key_values(key),
            )
            self._directory.forget_sign_ins()

    def key_by_hash(self, token_hash: str) -> ApiKey | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        return None if row is None else key_from_row(row)

    def api_keys(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at"
            ).fetchall()
        return [key_from_row(r) for r in rows]

    def revoke_key(self, key_id: str, at: float) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (at, key_id),
            )
            self._directory.forget_sign_ins()
        return cur.rowcount == 1

    def close(self) -> None:
        self._checkpoints.close()
        with self._lock:
            self._db.close()
