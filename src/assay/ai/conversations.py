"""Conversations: the AI jobs that share a ``conversationId``, seen as one thread (contract
section 5.9). A conversation has no row of its own: it exists while it has jobs, so it can
never disagree with them. Only a renamed conversation's name is stored, in
``ai_conversation_names``; the default name comes from its first prompt, as a chat list shows
it before anyone renames it.

Both AI stores build their queries here, so SQLite and PostgreSQL page, name and govern
conversations identically; ``mark`` turns a parameter name into the driver's placeholder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the store imports this module for its protocol
    from assay.ai.store import AIJob

Mark = Callable[[str], str]

#: longest name a rename may set (as Omni's topicName and other short labels)
MAX_NAME_CHARS = 256
#: a default name is the first prompt cut to this many characters, on one line
DEFAULT_NAME_CHARS = 80
NAMES_SCHEMA = """
CREATE TABLE IF NOT EXISTS ai_conversation_names (
    conversation_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    renamed_at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_jobs_user_conversation ON ai_jobs (user_id, conversation_id);
"""


@dataclass(frozen=True, slots=True)
class ConversationCursor:
    """Where a page of conversations ended: the next page starts after this one (newest
    first, ties broken by id), so a conversation started meanwhile never shifts a page."""

    updated_at: float
    id: str


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation as a list shows it. ``updated_at`` is its latest job activity;
    ``model_id`` the model of its latest job (the one a follow-up continues)."""

    id: str
    name: str
    user_id: str | None
    model_id: str
    created_at: float
    updated_at: float
    last_user_prompt: str
    job_count: int

    @property
    def cursor(self) -> ConversationCursor:
        """The position to pass as ``after`` for the page that follows this conversation."""
        return ConversationCursor(self.updated_at, self.id)


def default_name(first_prompt: str) -> str:
    """The first prompt on one line, cut at a word near ``DEFAULT_NAME_CHARS``."""
    line = " ".join(first_prompt.split())
    if len(line) <= DEFAULT_NAME_CHARS:
        return line
    cut = line[:DEFAULT_NAME_CHARS].rsplit(" ", 1)[0] or line[:DEFAULT_NAME_CHARS]
    return cut.rstrip(" ,.;:") + "…"


def from_jobs(jobs: Sequence[AIJob], renamed: str | None) -> Conversation:
    """A conversation from all its jobs, in the order they were asked."""
    first, last = jobs[0], jobs[-1]
    return Conversation(
        id=first.conversation_id, name=renamed or default_name(first.prompt),
        user_id=first.user_id, model_id=last.model_id, created_at=first.created_at,
        updated_at=max(j.updated_at for j in jobs), last_user_prompt=last.prompt,
        job_count=len(jobs),
    )  # fmt: skip


def from_row(row: Sequence[Any]) -> Conversation:
    """A conversation from a row of ``list_sql``."""
    conversation_id, user_id, created, updated, count, first, last, model_id, renamed = row
    return Conversation(
        id=conversation_id, name=renamed or default_name(first), user_id=user_id,
        model_id=model_id, created_at=created, updated_at=updated, last_user_prompt=last,
        job_count=count,
    )  # fmt: skip


def _owned(mark: Mark, user_id: str | None, alias: str = "") -> str:
    """The ownership condition to append to a WHERE clause; none for ``user_id=None`` (every
    user's: an organization key, or the server itself)."""
    return "" if user_id is None else f" AND {alias}user_id = {mark('user')}"


def list_sql(
    mark: Mark, user_id: str | None, after: ConversationCursor | None
) -> tuple[str, dict[str, Any]]:
    """One page of a user's conversations, newest activity first; ask ``limit`` + 1 rows to
    know whether another page follows."""
    page = ""
    if after is not None:
        at, conversation = mark("after_at"), mark("after_id")
        page = (f"WHERE c.updated_at < {at}"
                f" OR (c.updated_at = {at} AND c.conversation_id < {conversation})")  # fmt: skip
    turn = "FROM ai_jobs j WHERE j.conversation_id = c.conversation_id" + _owned(
        mark, user_id, "j."
    )
    sql = f"""
        SELECT c.conversation_id, c.user_id, c.created_at, c.updated_at, c.job_count,
            (SELECT j.prompt {turn} ORDER BY j.created_at, j.id LIMIT 1),
            (SELECT j.prompt {turn} ORDER BY j.created_at DESC, j.id DESC LIMIT 1),
            (SELECT j.model_id {turn} ORDER BY j.created_at DESC, j.id DESC LIMIT 1),
            n.name
        FROM (SELECT conversation_id, MAX(user_id) AS user_id, MIN(created_at) AS created_at,
                     MAX(updated_at) AS updated_at, COUNT(*) AS job_count
              FROM ai_jobs WHERE TRUE{_owned(mark, user_id)}
              GROUP BY conversation_id) c
        LEFT JOIN ai_conversation_names n ON n.conversation_id = c.conversation_id
        {page}
        ORDER BY c.updated_at DESC, c.conversation_id DESC
        LIMIT {mark("limit")}
    """
    params: dict[str, Any] = {"user": user_id}
    if after is not None:
        params.update(after_at=after.updated_at, after_id=after.id)
    return sql, params


def count_sql(mark: Mark, user_id: str | None) -> tuple[str, dict[str, Any]]:
    owned = _owned(mark, user_id)
    sql = f"SELECT COUNT(DISTINCT conversation_id) FROM ai_jobs WHERE TRUE{owned}"
    return sql, {"user": user_id}


def jobs_sql(
    mark: Mark, columns: str, conversation_id: str, user_id: str | None
) -> tuple[str, dict[str, Any]]:
    sql = (f"SELECT {columns} FROM ai_jobs WHERE conversation_id = {mark('id')}"
           f"{_owned(mark, user_id)} ORDER BY created_at, id")  # fmt: skip
    return sql, {"id": conversation_id, "user": user_id}


def name_sql(mark: Mark, conversation_id: str) -> tuple[str, dict[str, Any]]:
    sql = f"SELECT name FROM ai_conversation_names WHERE conversation_id = {mark('id')}"
    return sql, {"id": conversation_id}


def rename_sql(
    mark: Mark, conversation_id: str, name: str, user_id: str | None, at: float
) -> tuple[str, dict[str, Any]]:
    """Set the name only if the conversation exists and is the user's, in one statement (no
    name is ever stored for a conversation someone else owns or that is gone)."""
    sql = f"""
        INSERT INTO ai_conversation_names (conversation_id, name, renamed_at)
        SELECT {mark("id")}, {mark("name")}, {mark("at")}
        WHERE EXISTS (SELECT 1 FROM ai_jobs WHERE conversation_id = {mark("id")}
                      {_owned(mark, user_id)})
        ON CONFLICT (conversation_id) DO UPDATE
            SET name = excluded.name, renamed_at = excluded.renamed_at
    """
    return sql, {"id": conversation_id, "name": name, "at": at, "user": user_id}


Statement = tuple[str, dict[str, Any]]


def delete_sql(
    mark: Mark, conversation_id: str, user_id: str | None
) -> tuple[Statement, Statement]:
    """The jobs (their answers with them), then the name; run in one transaction, the name
    only when jobs went (so another user's conversation keeps its name too)."""
    params = {"id": conversation_id, "user": user_id}
    jobs = f"DELETE FROM ai_jobs WHERE conversation_id = {mark('id')}{_owned(mark, user_id)}"
    name = f"DELETE FROM ai_conversation_names WHERE conversation_id = {mark('id')}"
    return (jobs, params), (name, {"id": conversation_id})
