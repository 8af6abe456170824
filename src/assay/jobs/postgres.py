"""The shared job store on PostgreSQL: what lets several ``assay serve`` replicas act as one.

- Jobs are claimed with conditional updates (``SELECT ... FOR UPDATE SKIP LOCKED`` for the
  sweep), each claim holding a lease the running replica renews. A replica that dies stops
  renewing; once its lease runs out another replica's sweep claims the job and runs it again
  (queries are reads, so a second run is harmless). Terminal transitions stay conditional, so
  a job still ends exactly once, whichever replica or cancel gets there first.
- A job's end is announced with ``NOTIFY`` in the same statement that ends it, so a replica
  long-polling for the job wakes the moment it is committed, without polling.
- Results are kept in PostgreSQL itself (chunked ``bytea``) and copied to a replica's local
  results folder the first time it serves one: nothing else (no shared disk, no object store)
  has to be deployed, and the same retention rules prune both.
- Rate-limit buckets live in a table, updated by one atomic upsert on the database's clock, so
  a key's limit holds across replicas whose clocks disagree.

Lease and rate arithmetic uses the database's clock (``clock_timestamp()``); the timestamps
shown to clients are the replicas' own, as on SQLite.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from assay.counters import STORE_ROUND_TRIPS, Counters
from assay.engines.urls import redact
from assay.errors import ConfigError
from assay.jobs.directory_postgres import PostgresDirectory, upgrade
from assay.jobs.model import ApiKey, CachedResult, Job
from assay.jobs.recent import Recent
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

logger = logging.getLogger(__name__)

NOW = "extract(epoch FROM clock_timestamp())::double precision"
CHUNK_BYTES = 8 * 1024 * 1024
# A result saved but never referenced (its replica died before recording it) is deleted after
# this long; the delay keeps a prune from racing a replica between saving and recording.
UNREFERENCED_RESULT_GRACE_S = 3600.0
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")

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
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until DOUBLE PRECISION,
    user_id TEXT
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (created_at) WHERE status IN ('ADDED', 'EXECUTING');
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE TABLE IF NOT EXISTS result_cache (
    key TEXT PRIMARY KEY,
    result_file TEXT NOT NULL,
    summary TEXT NOT NULL,
    num_rows BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    computed_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS result_blobs (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (name, seq)
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    user_id TEXT,
    user_email TEXT,
    label TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS rate_buckets (
    key_id TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
"""


# The statement's own transaction commits without waiting for the WAL flush
# (``SET LOCAL synchronous_commit`` in one statement, without a transaction's round trips).
_NO_FLUSH_WAIT = " RETURNING set_config('synchronous_commit', 'off', true)"
_REMEMBER = (
    "INSERT INTO result_cache VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO "
    "UPDATE SET result_file = EXCLUDED.result_file, summary = EXCLUDED.summary, "
    "num_rows = EXCLUDED.num_rows, bytes = EXCLUDED.bytes, "
    "computed_at = EXCLUDED.computed_at, expires_at = EXCLUDED.expires_at"
)


def replica_name() -> str:
    """Who holds a lease: readable in the jobs table, unique per process start."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _counted_connection(counters: Counters) -> type[psycopg.Connection[TupleRow]]:
    """psycopg's connection, counting each statement it sends (each one round trip: the
    store sends no pipelines) into the store's round-trips metric."""

    class CountedConnection(psycopg.Connection[TupleRow]):
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            counters.add(STORE_ROUND_TRIPS, "postgres")
            return super().execute(*args, **kwargs)

    return CountedConnection


class PostgresJobStore:
    """The ``JobStore`` protocol for replicas sharing one PostgreSQL database."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        schema: str = "assay",
        lease_seconds: float = 30.0,
        pool_size: int = 8,
        owner: str | None = None,
        counters: Counters | None = None,
        memory_seconds: float = 0.0,
    ) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ConfigError(
                f"job_store_schema {schema!r} must be a lower-case identifier (a-z, 0-9, _)"
            )
        if lease_seconds <= 0:
            raise ConfigError(f"lease_seconds must be positive, got {lease_seconds}")
        self.schema = schema
        self.lease_seconds = lease_seconds
        self.owner = owner or replica_name()
        self.channel = f"{schema}_job_done"
        self._conninfo = url
        self._connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "options": f"-c search_path={schema}",
            "connect_timeout": 5,
        }
        try:
            with psycopg.connect(url, **{**self._connect_kwargs, "options": ""}) as conn:
                retrying_deadlocks(lambda: self._create_schema(conn))
        except psycopg.Error as exc:
            raise ConfigError(f"Cannot open the job store at {redact(url)}: {exc}") from exc
        #: what this server counts (its round trips here among them): see assay.counters
        self.counters = counters or Counters()
        self._pool: ConnectionPool[psycopg.Connection[TupleRow]] = ConnectionPool(
            url, min_size=1, max_size=max(2, pool_size), kwargs=self._connect_kwargs,
            open=True, name="assay-job-store", timeout=30.0,
            connection_class=_counted_connection(self.counters),
        )  # fmt: skip
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()
        self.directory = PostgresDirectory(self._pool, schema, memory_seconds=memory_seconds)
        self.users: Directory = self.directory
        # cache entries found or written here, reused for a few seconds (see jobs.recent)
        self._entries: Recent[str, CachedResult] = Recent(memory_seconds)

    def _create_schema(self, conn: psycopg.Connection[TupleRow]) -> None:
        # Replicas starting together would race on CREATE ... IF NOT EXISTS: serialise them.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"assay:{self.schema}",))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            conn.execute(f"SET LOCAL search_path = {self.schema}")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            upgrade(conn, self.schema, time.time())

    # ------------------------------------------------------------------ plumbing

    def _execute(self, sql: str, params: Any = None) -> None:
        with self._pool.connection() as conn:
            conn.execute(sql, params)

    def _rows(self, sql: str, params: Any = None) -> list[TupleRow]:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _count(self, sql: str, params: Any = None) -> int:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).rowcount

    # ------------------------------------------------------------------ jobs

    def add_jobs(self, jobs: Iterable[Job]) -> None:
        """Add jobs; one added as EXECUTING (started at once) holds this replica's lease."""
        listed = list(jobs)
        if not listed:
            return
        # One multi-row INSERT: atomic on its own, and one round trip instead of three.
        row = f"({placeholders(JOB_COLUMNS, '%s')}, %s, {NOW} + %s)"
        params: list[Any] = []
        for job in listed:
            started = job.status == "EXECUTING"
            params += [*job_values(job), self.owner if started else None,
                       self.lease_seconds if started else None]  # fmt: skip
        # Jobs that ended as they were made (a cache hit, plan-only, refused) are answered in
        # full by the request that made them: their commit does not wait for PostgreSQL's WAL
        # flush (set for this statement's own transaction only). Lost, they could be lost
        # only with PostgreSQL itself crashing in the next fraction of a second, which the
        # answer already given never depended on; waiting doubled a cache hit's write. A job
        # still to run must survive that too: its id is handed out to be waited for.
        ended = all(job.done for job in listed)
        self._execute(
            f"INSERT INTO jobs ({JOB_COLUMNS}, owner, lease_until) VALUES "
            + ", ".join([row] * len(listed))
            + (_NO_FLUSH_WAIT if ended else ""),
            params,
        )

    def get_jobs(self, ids: Iterable[str]) -> dict[str, Job]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        rows = self._rows(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY(%s)", (wanted,))
        return {row[0]: job_from_row(row) for row in rows}

    def start(self, job_id: str, at: float) -> bool:
        """Claim a job for this replica: it must be queued, or running on an expired lease."""
        return (
            self._count(
                "UPDATE jobs SET status = 'EXECUTING', started_at = %s, attempts = attempts + 1, "
                f"owner = %s, lease_until = {NOW} + %s WHERE id = %s AND (status = 'ADDED' OR "
                f"(status = 'EXECUTING' AND lease_until < {NOW}))",
                (at, self.owner, self.lease_seconds, job_id),
            )
            == 1
        )

    def claim_orphans(self, at: float, limit: int) -> list[Job]:
        """Jobs no live replica holds: leases that ran out, and jobs queued for longer than a
        lease (their replica stopped, or is too busy to start them). SKIP LOCKED lets every
        replica sweep at once without two of them claiming one job."""
        if limit <= 0:
            return []
        rows = self._rows(
            f"WITH due AS (SELECT id FROM jobs WHERE (status = 'ADDED' AND created_at < {NOW} - "
            f"%(lease)s) OR (status = 'EXECUTING' AND lease_until < {NOW}) ORDER BY created_at "
            "LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
            "UPDATE jobs SET status = 'EXECUTING', started_at = %(at)s, attempts = attempts + 1, "
            f"owner = %(owner)s, lease_until = {NOW} + %(lease)s FROM due WHERE jobs.id = due.id "
            f"RETURNING {', '.join('jobs.' + c.strip() for c in JOB_COLUMNS.split(','))}",
            {"lease": self.lease_seconds, "limit": limit, "at": at, "owner": self.owner},
        )
        return [job_from_row(r) for r in rows]

    def renew(self, ids: Iterable[str]) -> int:
        """Extend this replica's leases on the jobs it is running."""
        wanted = list(ids)
        if not wanted:
            return 0
        return self._count(
            f"UPDATE jobs SET lease_until = {NOW} + %s "
            "WHERE id = ANY(%s) AND owner = %s AND status = 'EXECUTING'",
            (self.lease_seconds, wanted, self.owner),
        )

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
        # One statement: the job ends, its result is cached (even when a cancel won the race:
        # the result is still right) and its NOTIFY goes out, in one commit and round trip.
        remember = ""
        params: tuple[Any, ...] = ()
        if cached is not None:
            remember = f"cached AS ({_REMEMBER} RETURNING key), "
            params = cached_values(cached)
        rows = self._rows(
            f"WITH {remember}done AS (UPDATE jobs SET status = %s, finished_at = %s, "
            "summary = %s, cache_metadata = %s, result_file = %s, error_type = %s, "
            "error_message = %s, lease_until = NULL WHERE id = %s AND status IN "
            "('ADDED', 'EXECUTING') RETURNING id) SELECT pg_notify(%s, id) FROM done",
            (*params, status, at, dump(summary), dump(cache_metadata), result_file, error_type,
             error_message, job_id, self.channel),
        )  # fmt: skip
        if cached is not None:
            self._entries.put(cached.key, cached)
        return len(rows) == 1

    def requeue(self, job_id: str) -> bool:
        return (
            self._count(
                "UPDATE jobs SET status = 'ADDED', started_at = NULL, owner = NULL, "
                "lease_until = NULL, attempts = GREATEST(attempts - 1, 0) "
                "WHERE id = %s AND status = 'EXECUTING' AND owner = %s",
                (job_id, self.owner),
            )
            == 1
        )

    def unfinished(self) -> list[Job]:
        """Nothing to re-run at start-up: other replicas may be running these jobs. Leases
        hand over what a stopped replica left, through ``claim_orphans``."""
        return []

    # ------------------------------------------------------------------ wake-ups

    def listen(self, on_end: Callable[[str], None], on_gap: Callable[[], None]) -> None:
        """Call ``on_end(job_id)`` for every job that ends, on any replica. After a lost
        connection (notifications may have been missed) ``on_gap()`` is called once the
        listener is back, so waiters re-read their jobs."""
        if self._listener is not None:
            return
        self._listener = threading.Thread(
            target=self._listen_forever, args=(on_end, on_gap), name="assay-listen", daemon=True
        )
        self._listener.start()

    def _listen_forever(self, on_end: Callable[[str], None], on_gap: Callable[[], None]) -> None:
        delay, first = 0.2, True
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    if not first:
                        on_gap()
                    first, delay = False, 0.2
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            on_end(note.payload)
            except psycopg.Error as exc:
                if self._stopping.is_set():
                    return
                logger.warning("job store listener lost its connection (%s); retrying", exc)
                self._stopping.wait(delay)
                delay = min(delay * 2, 5.0)

    # ------------------------------------------------------------------ results

    def save_result(self, name: str, path: Path) -> None:
        """Keep a result file in the database, before any job refers to it."""
        with self._pool.connection() as conn, conn.transaction(), path.open("rb") as f:
            seq = 0
            while chunk := f.read(CHUNK_BYTES):
                conn.execute(
                    f"INSERT INTO result_blobs VALUES (%s, %s, %s, {NOW}) "
                    "ON CONFLICT (name, seq) DO NOTHING",
                    (name, seq, chunk),
                )
                seq += 1
            if seq == 0:  # an empty file is still a result
                conn.execute(
                    f"INSERT INTO result_blobs VALUES (%s, 0, ''::bytea, {NOW}) "
                    "ON CONFLICT (name, seq) DO NOTHING",
                    (name,),
                )

    def fetch_result(self, name: str, path: Path) -> bool:
        """Copy a result from the database to ``path``; False when it is gone."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
        found = False
        path.parent.mkdir(parents=True, exist_ok=True)
        # A named (server-side) cursor streams the chunks instead of loading them all.
        with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name=f"fetch_{uuid.uuid4().hex}") as cur,
            tmp.open("wb") as out,
        ):
            cur.execute("SELECT data FROM result_blobs WHERE name = %s ORDER BY seq", (name,))
            for (data,) in cur:
                out.write(data)
                found = True
        if found:
            os.replace(tmp, path)
        else:
            tmp.unlink(missing_ok=True)
        return found

    # ------------------------------------------------------------------ result cache

    def remembered(self, key: str, now: float) -> CachedResult | None:
        known = self._entries.get(key)
        return known if known is not None and known.expires_at > now else None

    def cached(self, key: str, now: float) -> CachedResult | None:
        known = self.remembered(key, now)
        if known is not None:
            return known
        rows = self._rows(
            f"SELECT {CACHE_COLUMNS} FROM result_cache WHERE key = %s AND expires_at > %s",
            (key, now),
        )
        if not rows:
            return None
        found = cached_from_row(rows[0])
        self._entries.put(key, found)
        return found

    def remember(self, result: CachedResult) -> None:
        self._execute(_REMEMBER, cached_values(result))
        self._entries.put(result.key, result)

    def prune(self, now: float, keep_jobs_since: float) -> list[str]:
        referenced = (
            "SELECT result_file FROM jobs WHERE result_file IS NOT NULL "
            "UNION SELECT result_file FROM result_cache"
        )
        with self._pool.connection() as conn, conn.transaction():
            # One replica prunes at a time; the others skip this round.
            locked = conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext(%s))", (f"assay:{self.schema}:prune",)
            ).fetchone()
            if not locked or not locked[0]:
                return []
            before = {r[0] for r in conn.execute(referenced)}
            conn.execute("DELETE FROM result_cache WHERE expires_at <= %s", (now,))
            conn.execute(
                "DELETE FROM jobs WHERE created_at < %s AND status NOT IN ('ADDED', 'EXECUTING')",
                (keep_jobs_since,),
            )
            after = {r[0] for r in conn.execute(referenced)}
            gone = sorted(before - after)
            conn.execute("DELETE FROM result_blobs WHERE name = ANY(%s)", (gone,))
            conn.execute(
                f"DELETE FROM result_blobs WHERE created_at < {NOW} - %s AND name NOT IN "
                f"({referenced})",
                (UNREFERENCED_RESULT_GRACE_S,),
            )
        return gone

    def referenced_results(self, names: Iterable[str]) -> set[str]:
        wanted = list(names)
        if not wanted:
            return set()
        rows = self._rows(
            "SELECT result_file FROM jobs WHERE result_file = ANY(%(n)s) "
            "UNION SELECT result_file FROM result_cache WHERE result_file = ANY(%(n)s)",
            {"n": wanted},
        )
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ rate limits

    def take_token(self, key_id: str, per_minute: int) -> float:
        """Spend one request from the key's bucket: 0 when allowed, else the seconds until
        one is available. One atomic upsert, so replicas never both spend the last token."""
        rate = per_minute / 60.0
        params = {"key": key_id, "cap": float(per_minute), "rate": rate}
        refill = "LEAST(%(cap)s, b.tokens + (" + NOW + " - b.updated_at) * %(rate)s)"
        with self._pool.connection() as conn:
            spent = conn.execute(
                "INSERT INTO rate_buckets AS b (key_id, tokens, updated_at) "
                f"VALUES (%(key)s, %(cap)s - 1, {NOW}) ON CONFLICT (key_id) DO UPDATE SET "
                f"tokens = {refill} - 1, updated_at = {NOW} WHERE {refill} >= 1 RETURNING tokens",
                params,
            ).fetchone()
            if spent is not None:
                return 0.0
            row = conn.execute(
                f"SELECT {refill} FROM rate_buckets AS b WHERE key_id = %(key)s", params
            ).fetchone()
        tokens = float(row[0]) if row else 0.0
        return max(1.0, math.ceil((1.0 - tokens) / rate))

    # ------------------------------------------------------------------ API keys

    def add_key(self, key: ApiKey) -> None:
        self._execute(
            f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ({placeholders(KEY_COLUMNS, '%s')})",
            key_values(key),
        )
        self.directory.forget_sign_ins()

    def key_by_hash(self, token_hash: str) -> ApiKey | None:
        rows = self._rows(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = %s", (token_hash,)
        )
        return key_from_row(rows[0]) if rows else None

    def api_keys(self) -> list[ApiKey]:
        return [key_from_row(r) for r in self._rows(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY "
                                            "created_at")]  # fmt: skip

    def revoke_key(self, key_id: str, at: float) -> bool:
        revoked = self._count(
            "UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
            (at, key_id),
        )
        self.directory.forget_sign_ins()
        return revoked == 1

    def close(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.join(timeout=3.0)
        self._pool.close()


#: how many times a transaction of schema statements is tried when PostgreSQL breaks a deadlock
SCHEMA_ATTEMPTS = 5
T = TypeVar("T")


def retrying_deadlocks(make: Callable[[], T]) -> T:
    """``make`` (one transaction of schema statements), tried again when PostgreSQL ends it
    as one side of a deadlock. ``CREATE INDEX IF NOT EXISTS`` locks its table even when the
    index exists, and an ``ALTER TABLE`` after it asks for a stronger lock: a replica writing
    that table meanwhile, or waiting for the schema lock, closes the circle, and PostgreSQL
    rolls one transaction back (``assay keys create`` against a live store failed so, now and
    then). Rolled back whole, the statements are safe to run again."""
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            return make()
        except psycopg.errors.DeadlockDetected:
            if attempt == SCHEMA_ATTEMPTS:
                raise
            logger.info("the job store's schema met a deadlock; trying again (%d)", attempt)
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")
