"""A user's conversations for the chat page's list, newest first.

The AI store is gaining a ``conversations`` method of its own; until it is there, this reads
the ``ai_jobs`` table directly. Everything else asks through ``conversations_of``, so the swap
is one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assay.ai.store import AIStore

_LIST = """
SELECT conversation_id, MIN(created_at), MAX(created_at), COUNT(*),
       MIN(model_id)
FROM ai_jobs WHERE user_id = {mark} GROUP BY conversation_id
ORDER BY MAX(created_at) DESC LIMIT {limit}
"""
_PROMPTS = """
SELECT conversation_id, prompt, created_at FROM ai_jobs
WHERE user_id = {mark} AND conversation_id IN ({ids}) ORDER BY created_at
"""


@dataclass(frozen=True, slots=True)
class ConversationItem:
    id: str
    name: str
    model_id: str
    created_at: float
    updated_at: float
    last_user_prompt: str
    job_count: int


def conversations_of(store: AIStore, user_id: str, limit: int = 50) -> list[ConversationItem]:
    """The user's conversations, the most recently asked first."""
    listed = getattr(store, "conversations", None)
    if callable(listed):  # the store's own, when it has one
        return [_item(c) for c in listed(user_id, limit=limit, after=None)]
    return _read_table(store, user_id, max(1, min(limit, 500)))


def _item(found: Any) -> ConversationItem:
    return ConversationItem(
        id=found.id, name=found.name or found.last_user_prompt or "Conversation",
        model_id=found.model_id, created_at=found.created_at, updated_at=found.updated_at,
        last_user_prompt=found.last_user_prompt or "",
        job_count=int(getattr(found, "job_count", 0) or 0),
    )  # fmt: skip


def _read_table(store: AIStore, user_id: str, limit: int) -> list[ConversationItem]:
    rows = _rows(store, _LIST.format(mark="{mark}", limit=int(limit)), (user_id,))
    if not rows:
        return []
    ids = [str(r[0]) for r in rows]
    marks = ", ".join("{mark}" for _ in ids)
    prompts: dict[str, list[str]] = {}
    for cid, prompt, _ in _rows(store, _PROMPTS.format(mark="{mark}", ids=marks),
                                (user_id, *ids)):  # fmt: skip
        prompts.setdefault(str(cid), []).append(str(prompt))
    return [
        ConversationItem(
            id=str(cid),
            name=prompts.get(str(cid), ["Conversation"])[0],
            model_id=str(model),
            created_at=float(first),
            updated_at=float(last),
            last_user_prompt=prompts.get(str(cid), [""])[-1],
            job_count=int(count),
        )
        for cid, first, last, count, model in rows
    ]


def _rows(store: AIStore, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
    """Run a read on whichever store this is (SQLite or PostgreSQL)."""
    db = getattr(store, "_db", None)
    if db is not None:
        with store._lock:  # type: ignore[attr-defined]
            return list(db.execute(sql.replace("{mark}", "?"), params).fetchall())
    pool = store._pool  # type: ignore[attr-defined]
    with pool.connection() as conn:
        return list(conn.execute(sql.replace("{mark}", "%s"), params).fetchall())
