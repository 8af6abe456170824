"""Chat page sessions in the job store, on both stores (a real SQLite file, and a schema of
its own on the real PostgreSQL): found by their hash only while live, their key as stored
now (so a revoked key shows), gone at sign-out, expired ones swept at the next sign-in."""

from __future__ import annotations

import time

from assay.jobs.chat_sessions import ChatSession
from assay.jobs.keys import create_key, org_admin
from assay.jobs.store import JobStore
from tests.jobs.test_directory import store  # noqa: F401 (the fixture, on both stores)


def test_a_session_is_found_by_its_hash_while_it_lives(store: JobStore) -> None:  # noqa: F811
    key, _ = create_key(store, "org", user=org_admin(store))
    now = time.time()
    live = ChatSession("a" * 64, key.id, key.user_id, now, now + 60)
    store.users.open_chat_session(live)
    found = store.users.chat_session("a" * 64, now)
    assert found is not None
    session, found_key, profile = found
    assert session == live and found_key.id == key.id and found_key.revoked_at is None
    assert profile is not None and profile.user.id == key.user_id
    assert store.users.chat_session("b" * 64, now) is None
    assert store.users.chat_session("a" * 64, now + 61) is None  # expired

    store.revoke_key(key.id, now + 1)
    after = store.users.chat_session("a" * 64, now + 2)
    assert after is not None and after[1].revoked_at is not None  # the page refuses it

    assert store.users.end_chat_session("a" * 64) is True
    assert store.users.chat_session("a" * 64, now) is None
    assert store.users.end_chat_session("a" * 64) is False


def test_expired_sessions_are_swept_at_the_next_sign_in(store: JobStore) -> None:  # noqa: F811
    key, _ = create_key(store, "org", user=org_admin(store))
    now = time.time()
    store.users.open_chat_session(ChatSession("c" * 64, key.id, key.user_id, now - 10, now - 1))
    store.users.open_chat_session(ChatSession("d" * 64, key.id, key.user_id, now, now + 60))
    assert store.users.end_chat_session("c" * 64) is False  # already gone
    assert store.users.chat_session("d" * 64, now) is not None
