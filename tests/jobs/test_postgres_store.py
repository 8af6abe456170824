"""The shared PostgreSQL job store, on the real PostgreSQL of this machine: two store objects
stand for two replicas (each has its own owner name and connection pool)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from assay.ai.store import AIJob, ConversationBusy
from assay.ai.store_postgres import PostgresAIStore
from assay.counters import STORE_ROUND_TRIPS
from assay.errors import ConfigError
from assay.jobs.keys import create_key, hash_token, user_for_email
from assay.jobs.model import ApiKey, CachedResult, Job
from assay.jobs.postgres import PostgresJobStore
from assay.jobs.users import Profile
from tests.live import POSTGRES_URL, unavailable

LEASE = 0.6


def job(job_id: str, created: float | None = None) -> Job:
    return Job(id=job_id, status="ADDED", client_result_id=f"c-{job_id}", model_id="m",
               request={"query": {"fields": ["a.b"]}},
               created_at=time.time() if created is None else created)  # fmt: skip


@pytest.fixture
def schema() -> Iterator[str]:
    """A schema of its own per test, dropped afterwards."""
    name = f"assay_t_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5):
            pass
    except psycopg.Error as exc:
        unavailable(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
    yield name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def replicas(schema: str) -> Iterator[tuple[PostgresJobStore, PostgresJobStore]]:
    a = PostgresJobStore(POSTGRES_URL, schema=schema, lease_seconds=LEASE, owner="replica-a")
    b = PostgresJobStore(POSTGRES_URL, schema=schema, lease_seconds=LEASE, owner="replica-b")
    yield a, b
    a.close()
    b.close()


def test_a_job_ends_exactly_once_whichever_replica_ends_it(
    replicas: tuple[PostgresJobStore, PostgresJobStore],
) -> None:
    a, b = replicas
    a.add_jobs([job("j")])
    assert a.start("j", 1.0)
    assert b.finish("j", status="FAILED", at=2.0, error_type="KILL", error_message="stop")
    assert not a.finish("j", status="COMPLETE", at=3.0, result_file="r.arrows")
    done = b.get_jobs(["j"])["j"]
    assert (done.status, done.error_type, done.result_file, done.attempts) == (
        "FAILED", "KILL", None, 1,
    )  # fmt: skip


def test_a_live_lease_keeps_others_off_and_an_expired_one_hands_the_job_over(
    replicas: tuple[PostgresJobStore, PostgresJobStore],
) -> None:
    a, b = replicas
    a.add_jobs([job("j")])
    assert a.start("j", 1.0)
    assert not b.start("j", 1.1), "another replica's lease is live"
    assert b.claim_orphans(1.2, 10) == []
    for _ in range(4):  # renewing keeps it alive well past one lease
        time.sleep(LEASE / 3)
        assert a.renew(["j"]) == 1
    assert b.claim_orphans(1.3, 10) == []
    time.sleep(LEASE + 0.2)  # replica a "died": no renewal
    taken = b.claim_orphans(2.0, 10)
    assert [(t.id, t.status, t.attempts) for t in taken] == [("j", "EXECUTING", 2)]
    assert a.renew(["j"]) == 0, "the old owner lost its lease"
    assert not a.requeue("j"), "only the owner may put a job back"


def test_concurrent_sweeps_claim_each_orphan_once(
    replicas: tuple[PostgresJobStore, PostgresJobStore],
) -> None:
    a, b = replicas
    old = time.time() - 60  # queued a minute ago: its replica is gone
    a.add_jobs([job(f"j{i}", created=old) for i in range(40)])
    start = threading.Barrier(2)

    def sweep(store: PostgresJobStore) -> list[str]:
        start.wait()
        got: list[str] = []
        while batch := store.claim_orphans(time.time(), 3):
            got += [j.id for j in batch]
        return got

    with ThreadPoolExecutor(2) as pool:
        ours, theirs = pool.map(sweep, [a, b])
    assert sorted(ours + theirs) == sorted(f"j{i}" for i in range(40))
    assert not set(ours) & set(theirs)


def test_a_job_end_wakes_the_other_replica(
    replicas: tuple[PostgresJobStore, PostgresJobStore],
) -> None:
    a, b = replicas
    heard: list[tuple[str, float]] = []
    got = threading.Event()

    def on_end(job_id: str) -> None:
        heard.append((job_id, time.perf_counter()))
        got.set()

    b.listen(on_end, lambda: None)
    time.sleep(0.3)  # LISTEN is in place
    a.add_jobs([job("j"), job("k")])
    a.start("j", 1.0)
    ended = time.perf_counter()
    assert a.finish("j", status="COMPLETE", at=2.0)
    assert got.wait(5)
    assert heard[0][0] == "j"
    assert heard[0][1] - ended < 0.5
    assert not a.finish("j", status="FAILED", at=3.0), "a second end is refused ..."
    time.sleep(0.3)
    assert [h[0] for h in heard] == ["j"], "... and announces nothing"


def test_results_saved_on_one_replica_are_read_on_the_other(
    replicas: tuple[PostgresJobStore, PostgresJobStore], tmp_path: Path
) -> None:
    a, b = replicas
    payload = bytes(range(256)) * 50_000  # 12.8 MB: more than one chunk
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "r.arrows").write_bytes(payload)
    a.save_result("r.arrows", tmp_path / "a" / "r.arrows")
    assert b.fetch_result("r.arrows", tmp_path / "b" / "r.arrows")
    assert (tmp_path / "b" / "r.arrows").read_bytes() == payload
    assert not b.fetch_result("missing.arrows", tmp_path / "b" / "missing.arrows")
    assert not (tmp_path / "b" / "missing.arrows").exists()
    # Referenced by a cache entry until it expires; then pruning deletes it everywhere.
    a.remember(CachedResult("k", "r.arrows", {}, 1, len(payload), 1.0, 50.0))
    assert b.referenced_results(["r.arrows", "x.arrows"]) == {"r.arrows"}
    assert b.prune(now=100.0, keep_jobs_since=0.0) == ["r.arrows"]
    assert not a.fetch_result("r.arrows", tmp_path / "c" / "r.arrows")


def test_the_rate_limit_holds_across_replicas(
    replicas: tuple[PostgresJobStore, PostgresJobStore],
) -> None:
    a, b = replicas
    spent = [a.take_token("key", 6) if i % 2 else b.take_token("key", 6) for i in range(6)]
    assert spent == [0.0] * 6
    wait = a.take_token("key", 6)
    assert 1.0 <= wait <= 10.0, "the seventh request in a minute waits for a refill (10 s)"
    assert b.take_token("other-key", 6) == 0.0, "each key has its own bucket"


def test_concurrent_requests_never_spend_more_than_the_bucket(
    replicas: tuple[PostgresJobStore, PostgresJobStore],
) -> None:
    a, b = replicas
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda i: (a if i % 2 else b).take_token("k", 20), range(60)))
    assert sum(1 for w in waits if w == 0.0) == 20


def test_keys_created_on_one_replica_work_on_the_other(
    replicas: tuple[PostgresJobStore, PostgresJobStore],
) -> None:
    a, b = replicas
    key, token = create_key(a, "pat", user=user_for_email(a, "ann@example.com"))
    found = b.key_by_hash(hash_token(token))
    assert found is not None and found.id == key.id
    owner = b.users.user(key.user_id or "")
    assert owner is not None and owner.user_name == "ann@example.com"
    assert b.revoke_key(key.id, 5.0)
    assert not a.revoke_key(key.id, 6.0)


def test_a_bad_schema_name_is_refused_before_any_sql(schema: str) -> None:
    with pytest.raises(ConfigError, match="job_store_schema"):
        PostgresJobStore(POSTGRES_URL, schema="bad; DROP TABLE x")


def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"Cannot open the job store at .*:\*\*\*@"):
        PostgresJobStore("postgresql://user:secret@127.0.0.1:1/db")


def test_one_open_ai_job_per_conversation_across_replicas(schema: str) -> None:
    PostgresJobStore(POSTGRES_URL, schema=schema).close()  # creates the schema
    a = PostgresAIStore(POSTGRES_URL, schema=schema)
    b = PostgresAIStore(POSTGRES_URL, schema=schema)
    try:
        first = AIJob(id="1", conversation_id="c", state="QUEUED", prompt="q", model_id="m",
                      created_at=1.0, updated_at=1.0)  # fmt: skip
        a.add(first)
        with pytest.raises(ConversationBusy):
            b.add(AIJob(id="2", conversation_id="c", state="QUEUED", prompt="q2", model_id="m",
                        created_at=2.0, updated_at=2.0))  # fmt: skip
        done = AIJob(id="1", conversation_id="c", state="COMPLETE", prompt="q", model_id="m",
                     created_at=1.0, updated_at=3.0, result={"message": "hi"})  # fmt: skip
        assert b.update(done)
        b.add(AIJob(id="3", conversation_id="c", state="QUEUED", prompt="q3", model_id="m",
                    created_at=4.0, updated_at=4.0))  # fmt: skip
        assert [j.id for j in a.conversation("c")] == ["1", "3"]
        assert a.get("1") is not None and a.get("1").result == {"message": "hi"}  # type: ignore[union-attr]
    finally:
        a.close()
        b.close()


MEMORY = 0.5  # seconds a replica reuses a sign-in or a cache entry it read


@pytest.fixture
def remembering(schema: str) -> Iterator[tuple[PostgresJobStore, PostgresJobStore]]:
    a = PostgresJobStore(POSTGRES_URL, schema=schema, owner="replica-a", memory_seconds=MEMORY)
    b = PostgresJobStore(POSTGRES_URL, schema=schema, owner="replica-b", memory_seconds=MEMORY)
    yield a, b
    a.close()
    b.close()


def round_trips(store: PostgresJobStore) -> float:
    return store.counters.value(STORE_ROUND_TRIPS, "postgres")


def signed_in(store: PostgresJobStore, digest: str) -> tuple[ApiKey, Profile | None]:
    found = store.users.sign_in(digest)
    assert found is not None
    return found


def test_a_sign_in_is_reused_briefly_and_a_revocation_reaches_every_replica_within_it(
    remembering: tuple[PostgresJobStore, PostgresJobStore],
) -> None:
    a, b = remembering
    key, token = create_key(a, "pat", user=user_for_email(a, "ann@example.com"))
    digest = hash_token(token)
    assert signed_in(b, digest)[0].revoked_at is None
    before = round_trips(b)
    assert signed_in(b, digest)[0].id == key.id
    assert round_trips(b) == before, "the second sign-in is answered from memory"
    assert signed_in(a, digest)[0].revoked_at is None
    assert a.revoke_key(key.id, 5.0)
    assert signed_in(a, digest)[0].revoked_at == 5.0, "the revoking replica knows at once"
    time.sleep(MEMORY + 0.1)
    assert signed_in(b, digest)[0].revoked_at == 5.0, "the others within the window"
    assert b.users.sign_in(hash_token("assay_pat_unknown")) is None


def test_a_user_changed_through_a_replica_is_read_afresh_there(
    remembering: tuple[PostgresJobStore, PostgresJobStore],
) -> None:
    a, _ = remembering
    key, token = create_key(a, "pat", user=user_for_email(a, "bo@example.com"))
    assert signed_in(a, hash_token(token))[1] is not None
    a.users.set_model_role(key.user_id or "", "model-1", "VIEWER")
    profile = signed_in(a, hash_token(token))[1]
    assert profile is not None and profile.roles == {"model-1": "VIEWER"}


def test_a_cache_entry_is_reused_briefly_and_never_past_its_expiry(
    remembering: tuple[PostgresJobStore, PostgresJobStore],
) -> None:
    a, b = remembering
    a.remember(CachedResult("k", "r.arrows", {}, 1, 10, 1.0, 50.0))
    first = b.cached("k", 10.0)
    assert first is not None and first.result_file == "r.arrows"
    before = round_trips(b)
    again = b.cached("k", 20.0)
    assert again is not None and again.result_file == "r.arrows"
    assert round_trips(b) == before, "answered from memory"
    assert b.cached("k", 60.0) is None, "an expired entry is never answered from memory"
    a.remember(CachedResult("k", "s.arrows", {}, 1, 10, 30.0, 90.0))  # refreshed elsewhere
    time.sleep(MEMORY + 0.1)
    fresh = b.cached("k", 40.0)
    assert fresh is not None and fresh.result_file == "s.arrows"


def test_a_job_that_ended_as_it_was_made_commits_without_waiting_for_the_flush(
    replicas: tuple[PostgresJobStore, PostgresJobStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only for jobs whose whole answer the request gives (a cache hit): set for that
    statement's transaction alone, never for the connection, and never for a job to run."""
    a, b = replicas
    sent: list[str] = []
    execute = a._execute

    def recorded(sql: str, params: Any = None) -> None:
        sent.append(sql)
        execute(sql, params)

    monkeypatch.setattr(a, "_execute", recorded)
    with a._pool.connection() as conn:
        before = conn.execute("SHOW synchronous_commit").fetchone()
    ended = Job(id="hit", status="COMPLETE", client_result_id="c-hit", model_id="m",
                request={"query": {}}, created_at=1.0, finished_at=1.0)  # fmt: skip
    a.add_jobs([ended])
    a.add_jobs([job("queued")])
    a.add_jobs([job("queued-2"), replace(ended, id="hit-2")])
    assert ["set_config('synchronous_commit', 'off', true)" in s for s in sent] == [
        True, False, False]  # fmt: skip
    with a._pool.connection() as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == before
    stored = b.get_jobs(["hit", "queued", "queued-2", "hit-2"])
    assert {k: j.status for k, j in stored.items()} == {
        "hit": "COMPLETE", "queued": "ADDED", "queued-2": "ADDED", "hit-2": "COMPLETE"}  # fmt: skip


def test_opening_a_live_store_survives_a_deadlock_with_a_replica(schema: str) -> None:
    """Opening runs the schema statements in a transaction holding the schema lock; one of
    them locks `jobs` even when it changes nothing. A replica writing `jobs` that then waits
    for that lock closes a circle: PostgreSQL rolls the opening back, and it is tried again
    (before: `assay keys create` failed with "deadlock detected")."""
    PostgresJobStore(POSTGRES_URL, schema=schema).close()  # the store exists
    holding = threading.Event()

    def replica() -> None:
        with psycopg.connect(POSTGRES_URL, options=f"-c search_path={schema}") as conn:
            conn.execute("LOCK TABLE jobs IN ROW EXCLUSIVE MODE")  # a write in progress
            holding.set()
            time.sleep(0.5)  # the opening now holds the schema lock and waits for `jobs`
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"assay:{schema}",))
            conn.commit()

    with ThreadPoolExecutor(1) as pool:
        writer = pool.submit(replica)
        assert holding.wait(10)
        store = PostgresJobStore(POSTGRES_URL, schema=schema)  # raised ConfigError before
        writer.result(timeout=30)
    store.add_jobs([job("after")])
    assert store.get_jobs(["after"])["after"].status == "ADDED"
    store.close()
