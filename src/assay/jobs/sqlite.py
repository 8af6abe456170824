"""The job store on SQLite: one file in Assay's home, in WAL mode so readers never wait for
the writer. One connection, used under a lock from the event loop and the worker threads;
every statement is short."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assay.errors import ConfigError
from assay.jobs.model import ApiKey, CachedResult, Job

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
    attempts INTEGER NOT NULL DEFAULT 0
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
_JOB_COLUMNS = (
    "id, status, client_result_id, model_id, key_id, request, summary, cache_metadata, "
    "result_file, error_type, error_message, created_at, started_at, finished_at, attempts"
)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class SQLiteJobStore:
    shared = False

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash (our case); only an OS
            # crash can lose the last transactions.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"Cannot open the job store {path}: {exc}") from exc
        self._lock = threading.Lock()
        self.path = path

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
        rows = [
            (j.id, j.status, j.client_result_id, j.model_id, j.key_id, _dump(j.request),
             _dump(j.summary), _dump(j.cache_metadata), j.result_file, j.error_type,
             j.error_message, j.created_at, j.started_at, j.finished_at, j.attempts)
            for j in jobs
        ]  # fmt: skip
        with self._lock, self._transaction():
            self._db.executemany(
                f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 15)})", rows
            )

    def get_jobs(self, ids: Iterable[str]) -> dict[str, Job]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id IN ({marks})", wanted
            ).fetchall()
        return {row[0]: _job(row) for row in rows}

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
    ) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, summary = ?, cache_metadata = ?, "
                "result_file = ?, error_type = ?, error_message = ? "
                "WHERE id = ? AND status IN ('ADDED', 'EXECUTING')",
                (status, at, _dump(summary), _dump(cache_metadata), result_file, error_type,
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
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status IN ('ADDED', 'EXECUTING') "
                "ORDER BY created_at"
            ).fetchall()
        return [_job(r) for r in rows]

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
                "SELECT key, result_file, summary, num_rows, bytes, computed_at, expires_at "
                "FROM result_cache WHERE key = ? AND expires_at > ?",
                (key, now),
            ).fetchone()
        if row is None:
            return None
        return CachedResult(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], row[6])

    def remember(self, result: CachedResult) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO result_cache VALUES (?, ?, ?, ?, ?, ?, ?)",
                (result.key, result.result_file, _dump(result.summary), result.num_rows,
                 result.bytes, result.computed_at, result.expires_at),
            )  # fmt: skip

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
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key.id, key.kind, key.token_hash, key.prefix, key.user_id, key.user_email,
                 key.label, key.created_at, key.revoked_at),
            )  # fmt: skip

    def key_by_hash(self, token_hash: str) -> ApiKey | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, token_hash, prefix, user_id, user_email, label, created_at, "
                "revoked_at FROM api_keys WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        return None if row is None else _key(row)

    def api_keys(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, token_hash, prefix, user_id, user_email, label, created_at, "
                "revoked_at FROM api_keys ORDER BY created_at"
            ).fetchall()
        return [_key(r) for r in rows]

    def revoke_key(self, key_id: str, at: float) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (at, key_id),
            )
        return cur.rowcount == 1

    def user_exists(self, user_id: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM api_keys WHERE user_id = ? LIMIT 1", (user_id,)
            ).fetchone()
        return row is not None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0], status=row[1], client_result_id=row[2], model_id=row[3], key_id=row[4],
        request=json.loads(row[5]), summary=_load(row[6]), cache_metadata=_load(row[7]),
        result_file=row[8], error_type=row[9], error_message=row[10], created_at=row[11],
        started_at=row[12], finished_at=row[13], attempts=row[14],
    )  # fmt: skip


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(
        id=row[0], kind=row[1], token_hash=row[2], prefix=row[3], user_id=row[4],
        user_email=row[5], label=row[6], created_at=row[7], revoked_at=row[8],
    )  # fmt: skip
