"""A job store made by the version before the user directory opens with the new code: old jobs
and keys are intact, the jobs table gains its ``user_id`` column, and every key gets a user
(a personal token the user its id named, an organization key the organization's admin)."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from assay.jobs.keys import hash_token, user_for_email, user_id_for
from assay.jobs.model import Job
from assay.jobs.postgres import PostgresJobStore
from assay.jobs.sqlite import SQLiteJobStore
from assay.jobs.store import JobStore
from tests.live import POSTGRES_URL, unavailable

# The tables as the previous version created them (no jobs.user_id, no directory).
OLD_SQLITE = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, client_result_id TEXT NOT NULL,
    model_id TEXT NOT NULL, key_id TEXT, request TEXT NOT NULL, summary TEXT,
    cache_metadata TEXT, result_file TEXT, error_type TEXT, error_message TEXT,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_open ON jobs (status) WHERE status IN ('ADDED', 'EXECUTING');
CREATE INDEX jobs_created ON jobs (created_at);
CREATE TABLE result_cache (
    key TEXT PRIMARY KEY, result_file TEXT NOT NULL, summary TEXT NOT NULL,
    num_rows INTEGER NOT NULL, bytes INTEGER NOT NULL, computed_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, user_id TEXT, user_email TEXT, label TEXT,
    created_at REAL NOT NULL, revoked_at REAL
);
"""
OLD_POSTGRES = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, client_result_id TEXT NOT NULL,
    model_id TEXT NOT NULL, key_id TEXT, request TEXT NOT NULL, summary TEXT,
    cache_metadata TEXT, result_file TEXT, error_type TEXT, error_message TEXT,
    created_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION, attempts INTEGER NOT NULL DEFAULT 0, owner TEXT,
    lease_until DOUBLE PRECISION
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, user_id TEXT, user_email TEXT, label TEXT,
    created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION
);
"""
OLD_JOB = ("old-1", "COMPLETE", "client-1", "m-1", "k-org", '{"query":{"fields":["a.b"]}}',
           '{"total_rows":3}', None, "r.arrows", None, None, 10.0, 11.0, 12.0, 1)  # fmt: skip
ANN = user_id_for("Ann@Example.com")
# id, kind, token, user_id, user_email, label, created_at, revoked_at
OLD_KEYS = [
    ("k-org", "org", "assay_org_old", None, None, "ci", 1.0, None),
    ("k-ann", "pat", "assay_pat_ann", ANN, "Ann@Example.com", "laptop", 2.0, None),
    ("k-ann2", "pat", "assay_pat_ann2", ANN, "ann@example.com", None, 3.0, 4.0),
    ("k-org2", "org", "assay_org_two", None, None, None, 5.0, None),
]


def old_key_rows() -> list[tuple[object, ...]]:
    return [(i, kind, hash_token(tok), tok[:14], uid, email, label, at, revoked)
            for i, kind, tok, uid, email, label, at, revoked in OLD_KEYS]  # fmt: skip


def check_upgraded(store: JobStore) -> None:
    job = store.get_jobs(["old-1"])["old-1"]
    assert (job.status, job.summary, job.result_file, job.attempts, job.user_id) == (
        "COMPLETE", {"total_rows": 3}, "r.arrows", 1, None
    )  # fmt: skip
    keys = {k.id: k for k in store.api_keys()}
    assert set(keys) == {k[0] for k in OLD_KEYS}
    for key_id, kind, token, _, email, label, created, revoked in OLD_KEYS:
        key = keys[key_id]
        got = (key.kind, key.token_hash, key.user_email, key.label, key.created_at, key.revoked_at)
        assert got == (kind, hash_token(token), email, label, created, revoked)
        assert store.key_by_hash(hash_token(token)) == key
    ann = store.users.user(ANN)
    assert ann is not None and ann.user_name == "Ann@Example.com" and not ann.org_admin
    assert keys["k-ann"].user_id == keys["k-ann2"].user_id == ANN
    admin = store.users.user(keys["k-org"].user_id or "")
    assert admin is not None and admin.org_admin and admin.user_name == "admin@localhost"
    assert keys["k-org2"].user_id == admin.id
    assert store.users.users()[0] == 2, "one user per person, one admin"
    assert user_for_email(store, "ann@example.com") == ann, "new keys for Ann are Ann's"
    new = str(uuid.uuid4())
    store.add_jobs([Job(id=new, status="ADDED", client_result_id="c", model_id="m",
                        request={}, created_at=time.time(), user_id=ANN)])  # fmt: skip
    assert store.get_jobs([new])[new].user_id == ANN


def test_an_old_sqlite_store_opens_with_its_jobs_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "assay.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SQLITE)
        db.execute(f"INSERT INTO jobs VALUES ({','.join('?' * 15)})", OLD_JOB)
        db.executemany("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", old_key_rows())
    store = SQLiteJobStore(path)
    try:
        check_upgraded(store)
    finally:
        store.close()
    again = SQLiteJobStore(path)  # opening again changes nothing
    try:
        check_upgraded(again)
    finally:
        again.close()


@pytest.fixture
def old_schema() -> Iterator[str]:
    name = f"assay_u_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        unavailable(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
    with conn:
        conn.execute(f"CREATE SCHEMA {name}")
        conn.execute(f"SET search_path = {name}")
        for statement in OLD_POSTGRES.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"INSERT INTO jobs VALUES ({', '.join(['%s'] * 15)})", OLD_JOB)
        for row in old_key_rows():
            conn.execute(f"INSERT INTO api_keys VALUES ({', '.join(['%s'] * 9)})", row)
    yield name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def test_two_replicas_upgrading_an_old_postgres_store_at_once_agree(old_schema: str) -> None:
    stores: list[PostgresJobStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def open_replica() -> None:
        start.wait()
        try:
            stores.append(PostgresJobStore(POSTGRES_URL, schema=old_schema, pool_size=2))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_replica) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        for store in stores:
            check_upgraded(store)
    finally:
        for store in stores:
            store.close()
