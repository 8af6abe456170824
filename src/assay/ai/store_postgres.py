"""AI jobs on the shared PostgreSQL job store, so every replica sees every AI job.

A partial unique index keeps one open job per conversation across replicas (the check the
SQLite store does in one process). A job runs on the replica that accepted it; if that
replica stops, a replica starting later re-runs the jobs left open and untouched for
``STALE_AFTER_S`` (AI jobs update their progress as they go, so a live one is never stale).
Conversations are queried as in the SQLite store (``assay.ai.conversations``).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from assay.ai import conversations as talk
from assay.ai.conversations import Conversation, ConversationCursor
from assay.ai.store import COLUMNS, AIJob, ConversationBusy, column_value, job_from_row
from assay.jobs.postgres import retrying_deadlocks

STALE_AFTER_S = 300.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS ai_jobs (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    state TEXT NOT NULL,
    prompt TEXT NOT NULL,
    model_id TEXT NOT NULL,
    topic_name TEXT,
    key_id TEXT,
    user_id TEXT,
    webhook TEXT,
    progress TEXT,
    result TEXT,
    result_summary TEXT,
    error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    execution_started_at DOUBLE PRECISION,
    completed_at DOUBLE PRECISION,
    cancelled_at DOUBLE PRECISION,
    result_expires_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS ai_jobs_conversation ON ai_jobs (conversation_id, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS ai_jobs_one_open_per_conversation ON ai_jobs (conversation_id)
    WHERE state IN ('QUEUED', 'EXECUTING', 'DELIVERING');
""" + talk.NAMES_SCHEMA.format(real="DOUBLE PRECISION")  # added later: an older store gains them
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM ai_jobs"


class PostgresAIStore:
    def __init__(self, url: str, *, schema: str, pool_size: int = 4) -> None:
        kwargs = {"autocommit": True, "options": f"-c search_path={schema}", "connect_timeout": 5}
        self._pool: ConnectionPool[psycopg.Connection[TupleRow]] = ConnectionPool(
            url, min_size=1, max_size=pool_size, kwargs=kwargs, open=True, name="assay-ai-store"
        )
        retrying_deadlocks(lambda: self._create_tables(schema))

    def _create_tables(self, schema: str) -> None:
        with self._pool.connection() as conn, conn.transaction():
            # The job store created the schema; serialise replicas creating these tables.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"assay:{schema}:ai",))
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def _rows(self, sql: str, params: Any = None) -> list[TupleRow]:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def add(self, job: AIJob) -> None:
        values = [column_value(c, getattr(job, c)) for c in COLUMNS]
        marks = ", ".join(["%s"] * len(values))
        sql = f"INSERT INTO ai_jobs ({', '.join(COLUMNS)}) VALUES ({marks})"
        try:
            with self._pool.connection() as conn:
                conn.execute(sql, values)
        except psycopg.errors.UniqueViolation as exc:
            raise ConversationBusy("An active job already exists for this conversation") from exc

    def get(self, job_id: str) -> AIJob | None:
        rows = self._rows(f"{_SELECT} WHERE id = %s", (job_id,))
        return job_from_row(rows[0]) if rows else None

    def update(self, job: AIJob, *, only_if_open: bool = True) -> bool:
        sets = ", ".join(f"{c} = %s" for c in COLUMNS[1:])
        values = [column_value(c, getattr(job, c)) for c in COLUMNS[1:]]
        guard = " AND state NOT IN ('COMPLETE', 'FAILED', 'CANCELLED')" if only_if_open else ""
        with self._pool.connection() as conn:
            cur = conn.execute(f"UPDATE ai_jobs SET {sets} WHERE id = %s{guard}", [*values, job.id])
            return cur.rowcount == 1

    def conversation(self, conversation_id: str) -> list[AIJob]:
        rows = self._rows(
            f"{_SELECT} WHERE conversation_id = %s ORDER BY created_at", (conversation_id,)
        )
        return [job_from_row(r) for r in rows]

    def unfinished(self) -> list[AIJob]:
        rows = self._rows(
            f"{_SELECT} WHERE state IN ('QUEUED', 'EXECUTING', 'DELIVERING') AND updated_at < %s "
            "ORDER BY created_at",
            (time.time() - STALE_AFTER_S,),
        )
        return [job_from_row(r) for r in rows]

    def expire_results(self, now: float) -> int:
        with self._pool.connection() as conn:
            return conn.execute(
                "UPDATE ai_jobs SET result = NULL "
                "WHERE result IS NOT NULL AND result_expires_at <= %s",
                (now,),
            ).rowcount

    def conversations(
        self, user_id: str | None, *, limit: int, after: ConversationCursor | None
    ) -> list[Conversation]:
        sql, params = talk.list_sql(_named, user_id, after)
        return [talk.from_row(r) for r in self._rows(sql, {**params, "limit": limit})]

    def conversation_count(self, user_id: str | None) -> int:
        return int(self._rows(*talk.count_sql(_named, user_id))[0][0])

    def read_conversation(
        self, conversation_id: str, *, user_id: str | None
    ) -> tuple[Conversation, list[AIJob]] | None:
        jobs_sql = talk.jobs_sql(_named, ", ".join(COLUMNS), conversation_id, user_id)
        with self._pool.connection() as conn:
            rows = conn.execute(*jobs_sql).fetchall()
            named = conn.execute(*talk.name_sql(_named, conversation_id)).fetchone()
        if not rows:
            return None
        jobs = [job_from_row(r) for r in rows]
        return talk.from_jobs(jobs, named[0] if named else None), jobs

    def rename_conversation(self, conversation_id: str, name: str, *, user_id: str | None) -> bool:
        sql, params = talk.rename_sql(_named, conversation_id, name, user_id, time.time())
        with self._pool.connection() as conn:
            return conn.execute(sql, params).rowcount == 1

    def delete_conversation(self, conversation_id: str, *, user_id: str | None) -> bool:
        (jobs, job_params), (name, name_params) = talk.delete_sql(_named, conversation_id, user_id)
        with self._pool.connection() as conn, conn.transaction():
            deleted = conn.execute(jobs, job_params).rowcount
            if deleted:
                conn.execute(name, name_params)
        return deleted > 0

    def close(self) -> None:
        self._pool.close()


def _named(parameter: str) -> str:
    return f"%({parameter})s"
