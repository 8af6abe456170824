"""Conversations in both AI stores, the same tests on each: SQLite in a temporary file and
PostgreSQL in a schema of its own (as replicas share it). Names, newest-first paging with a
cursor, ownership enforced by the query itself, delete, and stores made before conversations
had names."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from assay.ai.conversations import MAX_NAME_CHARS, ConversationCursor, default_name
from assay.ai.store import AIJob, AIStore, SQLiteAIStore, evolve
from assay.ai.store_postgres import PostgresAIStore
from tests.live import POSTGRES_URL, postgres_schema

ANN, BOB = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
# ai_jobs as the stores made it before conversations had names (and before its user index)
OLD_AI_JOBS = """
CREATE TABLE ai_jobs (
    id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, state TEXT NOT NULL,
    prompt TEXT NOT NULL, model_id TEXT NOT NULL, topic_name TEXT, key_id TEXT, user_id TEXT,
    webhook TEXT, progress TEXT, result TEXT, result_summary TEXT, error TEXT,
    created_at {real} NOT NULL, updated_at {real} NOT NULL, execution_started_at {real},
    completed_at {real}, cancelled_at {real}, result_expires_at {real}
)
"""


def job(conversation: str, at: float, prompt: str = "revenue?", **changes: object) -> AIJob:
    base = AIJob(id=str(uuid.uuid4()), conversation_id=conversation, state="COMPLETE",
                 prompt=prompt, model_id="m1", created_at=at, updated_at=at, user_id=ANN,
                 result={"message": "answer"}, result_summary="answer")  # fmt: skip
    return evolve(base, **changes)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AIStore]:
    if request.param == "sqlite":
        opened: AIStore = SQLiteAIStore(tmp_path / "jobs.sqlite")
        yield opened
        opened.close()
        return
    with postgres_schema("assay_conv_") as schema:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        opened = PostgresAIStore(POSTGRES_URL, schema=schema, pool_size=2)
        yield opened
        opened.close()


def conversation_id() -> str:
    return str(uuid.uuid4())


def name_of(store: AIStore, conversation: str, user_id: str | None = ANN) -> str:
    found = store.read_conversation(conversation, user_id=user_id)
    assert found is not None, f"{conversation} not found"
    return found[0].name


def test_a_conversation_is_named_after_its_first_prompt_until_renamed(store: AIStore) -> None:
    talk = conversation_id()
    first = job(talk, 10.0, "What is total revenue\n  by region?")
    store.add(first)
    store.add(job(talk, 20.0, "only ASIA", model_id="m2", updated_at=25.0))
    found = store.read_conversation(talk, user_id=ANN)
    assert found is not None
    conversation, jobs = found
    assert conversation.name == "What is total revenue by region?"
    assert (conversation.created_at, conversation.updated_at) == (10.0, 25.0)
    assert (conversation.last_user_prompt, conversation.model_id) == ("only ASIA", "m2")
    assert (conversation.job_count, conversation.user_id) == (2, ANN)
    assert [j.prompt for j in jobs] == ["What is total revenue\n  by region?", "only ASIA"]

    assert store.rename_conversation(talk, "Revenue by region", user_id=ANN)
    assert store.rename_conversation(talk, "Regional revenue", user_id=ANN)  # again: replaced
    (listed,) = store.conversations(ANN, limit=10, after=None)
    assert listed.name == "Regional revenue"
    found = store.read_conversation(talk, user_id=ANN)
    assert found is not None and listed == found[0]


def test_a_long_first_prompt_is_cut_at_a_word() -> None:
    name = default_name("revenue " * 40)
    assert name.endswith("revenue…") and len(name) <= 81
    assert default_name("x" * 300) == "x" * 80 + "…"
    assert MAX_NAME_CHARS == 256


def test_conversations_page_newest_first_and_ties_never_repeat_or_vanish(store: AIStore) -> None:
    activity = {}
    for i in range(7):
        talk = conversation_id()
        activity[talk] = float(100 + i // 2)  # pairs share an updated_at: ties go by the id
        store.add(job(talk, activity[talk]))
    store.add(job(conversation_id(), 500.0, user_id=BOB))  # not Ann's: never in her pages
    expected = sorted(activity, key=lambda c: (activity[c], c), reverse=True)
    seen: list[str] = []
    after: ConversationCursor | None = None
    while True:
        page = store.conversations(ANN, limit=3, after=after)
        seen.extend(c.id for c in page)
        if len(page) < 3:
            break
        after = page[-1].cursor
    assert seen == expected
    assert store.conversation_count(ANN) == 7 and store.conversation_count(BOB) == 1
    assert store.conversation_count(None) == 8
    assert len(store.conversations(None, limit=100, after=None)) == 8


def test_another_users_conversation_is_not_found_renamed_or_deleted(store: AIStore) -> None:
    talk = conversation_id()
    store.add(job(talk, 1.0))
    assert store.read_conversation(talk, user_id=BOB) is None
    assert not store.rename_conversation(talk, "mine now", user_id=BOB)
    assert not store.delete_conversation(talk, user_id=BOB)
    found = store.read_conversation(talk, user_id=ANN)
    assert found is not None and found[0].name == "revenue?" and len(found[1]) == 1
    assert store.conversations(BOB, limit=10, after=None) == []
    # With no user (an organization key) it is found.
    assert store.read_conversation(talk, user_id=None) is not None


def test_a_missing_conversation_gets_no_name(store: AIStore) -> None:
    talk = conversation_id()
    assert not store.rename_conversation(talk, "ghost", user_id=None)
    store.add(job(talk, 1.0))
    assert name_of(store, talk) == "revenue?"


def test_delete_takes_the_jobs_and_the_name(store: AIStore) -> None:
    talk, other = conversation_id(), conversation_id()
    doomed = [job(talk, 1.0), job(talk, 2.0)]
    for j in [*doomed, job(other, 3.0)]:
        store.add(j)
    assert store.rename_conversation(talk, "to go", user_id=ANN)
    assert store.delete_conversation(talk, user_id=ANN)
    assert all(store.get(j.id) is None for j in doomed)
    assert store.read_conversation(talk, user_id=None) is None
    assert [c.id for c in store.conversations(ANN, limit=10, after=None)] == [other]
    assert not store.delete_conversation(talk, user_id=ANN)  # already gone
    # The same id asked again starts afresh: the old name did not survive.
    store.add(job(talk, 4.0, "a new start"))
    assert name_of(store, talk) == "a new start"


def test_an_sqlite_store_from_before_conversation_names_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(OLD_AI_JOBS.format(real="REAL"))
        db.execute(
            "INSERT INTO ai_jobs (id, conversation_id, state, prompt, model_id, user_id, "
            "created_at, updated_at) VALUES ('j1', 'c1', 'COMPLETE', 'old question', 'm', ?, 1, 1)",
            (ANN,),
        )
    store = SQLiteAIStore(path)
    try:
        assert [c.name for c in store.conversations(ANN, limit=5, after=None)] == ["old question"]
        assert store.rename_conversation("c1", "kept", user_id=ANN)
    finally:
        store.close()
    reopened = SQLiteAIStore(path)
    try:
        assert name_of(reopened, "c1") == "kept"
    finally:
        reopened.close()


def test_a_postgres_store_from_before_conversation_names_is_upgraded() -> None:
    with postgres_schema("assay_conv_old_") as schema:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(f"SET search_path = {schema}")
            conn.execute(OLD_AI_JOBS.format(real="DOUBLE PRECISION"))
            conn.execute(
                "INSERT INTO ai_jobs (id, conversation_id, state, prompt, model_id, user_id, "
                "created_at, updated_at) VALUES ('j1', 'c1', 'COMPLETE', 'old question', 'm', "
                "%s, 1, 1)",
                (ANN,),
            )
        replicas = [PostgresAIStore(POSTGRES_URL, schema=schema, pool_size=1) for _ in range(2)]
        try:
            a, b = replicas
            assert [c.name for c in a.conversations(ANN, limit=5, after=None)] == ["old question"]
            assert a.rename_conversation("c1", "kept", user_id=ANN)
            assert name_of(b, "c1") == "kept"
        finally:
            for replica in replicas:
                replica.close()
