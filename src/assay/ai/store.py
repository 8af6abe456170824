"""AI jobs, stored durably beside the query jobs (the same SQLite file, its own connection:
WAL lets both in). A job's result is kept until its expiry; after that the row stays, so the
API can still say the job existed. The jobs of one ``conversation_id`` are a conversation
(``assay.ai.conversations``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from assay.ai import conversations as talk
from assay.ai.conversations import Conversation, ConversationCursor
from assay.errors import AssayError
from assay.jobs.sqlite import open_checked, opening

AIState = Literal["QUEUED", "EXECUTING", "DELIVERING", "COMPLETE", "FAILED", "CANCELLED"]
AI_TERMINAL = frozenset({"COMPLETE", "FAILED", "CANCELLED"})

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
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    execution_started_at REAL,
    completed_at REAL,
    cancelled_at REAL,
    result_expires_at REAL
);
CREATE INDEX IF NOT EXISTS ai_jobs_conversation ON ai_jobs (conversation_id, created_at);
""" + talk.NAMES_SCHEMA.format(real="REAL")  # added later: opening an older store adds them
COLUMNS = (
    "id", "conversation_id", "state", "prompt", "model_id", "topic_name", "key_id", "user_id",
    "webhook", "progress", "result", "result_summary", "error", "created_at", "updated_at",
    "execution_started_at", "completed_at", "cancelled_at", "result_expires_at",
)  # fmt: skip
_JSON = {"webhook", "progress", "result", "error"}


class ConversationBusy(AssayError):
    """An active job already exists for this conversation."""

    code = "conversation_busy"
    status = 409


@dataclass(frozen=True, slots=True)
class AIJob:
    id: str
    conversation_id: str
    state: AIState
    prompt: str
    model_id: str
    created_at: float
    updated_at: float
    topic_name: str | None = None
    key_id: str | None = None
    user_id: str | None = None
    #: {"url", "secret", "metadata"} when the caller asked for a webhook
    webhook: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None
    #: the /result document (actions, message, topic ...), until it expires
    result: dict[str, Any] | None = None
    result_summary: str | None = None
    error: dict[str, Any] | None = None
    execution_started_at: float | None = None
    completed_at: float | None = None
    cancelled_at: float | None = None
    result_expires_at: float | None = None

    @property
    def done(self) -> bool:
        return self.state in AI_TERMINAL


class AIStore(Protocol):
    def add(self, job: AIJob) -> None:
        """Store a new job; ``ConversationBusy`` when its conversation has an open one."""
        ...

    def get(self, job_id: str) -> AIJob | None: ...

    def update(self, job: AIJob, *, only_if_open: bool = True) -> bool: ...

    def conversation(self, conversation_id: str) -> list[AIJob]: ...

    def unfinished(self) -> list[AIJob]: ...

    def expire_results(self, now: float) -> int: ...

    def conversations(
        self, user_id: str | None, *, limit: int, after: ConversationCursor | None
    ) -> list[Conversation]:
        """Up to ``limit`` of ``user_id``'s conversations, latest activity first, starting
        after the cursor (a conversation's ``.cursor``). ``user_id=None``: every user's."""
        ...

    def conversation_count(self, user_id: str | None) -> int: ...

    def read_conversation(
        self, conversation_id: str, *, user_id: str | None
    ) -> tuple[Conversation, list[AIJob]] | None:
        """The conversation and its jobs in the order they were asked; None when it does not
        exist or (``user_id`` given) is not that user's: the same answer, so nothing tells
        another user it exists."""
        ...

    def rename_conversation(self, conversation_id: str, name: str, *, user_id: str | None) -> bool:
        """False, and nothing stored, when the conversation does not exist or is not the
        user's."""
        ...

    def delete_conversation(self, conversation_id: str, *, user_id: str | None) -> bool:
        """Delete its jobs, their answers and its name; False when it does not exist or is not
        the user's. (Cancel its open job first: a running job would write to nothing.)"""
        ...

    def close(self) -> None: ...


class SQLiteAIStore:
    def __init__(self, path: Path) -> None:
        # Checked like the job store (same file): damage stops start-up, never hidden here.
        self._db = open_checked(path)
        with opening(path):
            self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def add(self, job: AIJob) -> None:
        values = [column_value(c, getattr(job, c)) for c in COLUMNS]
        with self._lock:
            placeholders = ", ".join("?" * len(COLUMNS))
            self._db.execute(
                f"INSERT INTO ai_jobs ({', '.join(COLUMNS)}) VALUES ({placeholders})", values
            )

    def get(self, job_id: str) -> AIJob | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM ai_jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return None if row is None else job_from_row(row)

    def update(self, job: AIJob, *, only_if_open: bool = True) -> bool:
        """Write the job's new state; with ``only_if_open``, not over a terminal state (a
        cancel that landed first stands)."""
        sets = ", ".join(f"{c} = ?" for c in COLUMNS[1:])
        values = [column_value(c, getattr(job, c)) for c in COLUMNS[1:]]
        guard = " AND state NOT IN ('COMPLETE', 'FAILED', 'CANCELLED')" if only_if_open else ""
        with self._lock:
            cur = self._db.execute(
                f"UPDATE ai_jobs SET {sets} WHERE id = ?{guard}", [*values, job.id]
            )
        return cur.rowcount == 1

    def conversation(self, conversation_id: str) -> list[AIJob]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM ai_jobs WHERE conversation_id = ? "
                "ORDER BY created_at",
                (conversation_id,),
            ).fetchall()
        return [job_from_row(r) for r in rows]

    def unfinished(self) -> list[AIJob]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM ai_jobs "
                "WHERE state IN ('QUEUED', 'EXECUTING', 'DELIVERING') ORDER BY created_at"
            ).fetchall()
        return [job_from_row(r) for r in rows]

    def expire_results(self, now: float) -> int:
        """Drop results past their expiry; the jobs stay, so they can say the result is gone."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE ai_jobs SET result = NULL"
                " WHERE result IS NOT NULL AND result_expires_at <= ?",
                (now,),
            )
        return cur.rowcount

    def conversations(
        self, user_id: str | None, *, limit: int, after: ConversationCursor | None
    ) -> list[Conversation]:
        sql, params = talk.list_sql(_named, user_id, after)
        with self._lock:
            rows = self._db.execute(sql, {**params, "limit": limit}).fetchall()
        return [talk.from_row(r) for r in rows]

    def conversation_count(self, user_id: str | None) -> int:
        with self._lock:
            (count,) = self._db.execute(*talk.count_sql(_named, user_id)).fetchone()
        return int(count)

    def read_conversation(
        self, conversation_id: str, *, user_id: str | None
    ) -> tuple[Conversation, list[AIJob]] | None:
        jobs_sql = talk.jobs_sql(_named, ", ".join(COLUMNS), conversation_id, user_id)
        with self._lock:
            rows = self._db.execute(*jobs_sql).fetchall()
            named = self._db.execute(*talk.name_sql(_named, conversation_id)).fetchone()
        if not rows:
            return None
        jobs = [job_from_row(r) for r in rows]
        return talk.from_jobs(jobs, named[0] if named else None), jobs

    def rename_conversation(self, conversation_id: str, name: str, *, user_id: str | None) -> bool:
        sql, params = talk.rename_sql(_named, conversation_id, name, user_id, time.time())
        with self._lock:
            return self._db.execute(sql, params).rowcount == 1

    def delete_conversation(self, conversation_id: str, *, user_id: str | None) -> bool:
        (jobs, job_params), (name, name_params) = talk.delete_sql(_named, conversation_id, user_id)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                deleted = self._db.execute(jobs, job_params).rowcount
                if deleted:
                    self._db.execute(name, name_params)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return deleted > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _named(parameter: str) -> str:
    return f":{parameter}"


def column_value(column: str, value: Any) -> Any:
    """A field as stored: the dict-valued ones as JSON text (both AI stores)."""
    return json.dumps(value) if column in _JSON and value is not None else value


def job_from_row(row: Sequence[Any]) -> AIJob:
    data = {
        c: (json.loads(v) if c in _JSON and v is not None else v)
        for c, v in zip(COLUMNS, row, strict=True)
    }
    return AIJob(**data)


def evolve(job: AIJob, **changes: Any) -> AIJob:
    return replace(job, **changes)
