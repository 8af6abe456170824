"""The SQLite job store: a job ends once, failed writes leave nothing behind, pruning keeps
what is referenced."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from assay.jobs.keys import create_key, hash_token, user_for_email, user_id_for
from assay.jobs.model import CachedResult, Job
from assay.jobs.sqlite import SQLiteJobStore
from assay.jobs.users import DirectoryError


def job(job_id: str, created: float = 100.0, **kw: object) -> Job:
    return Job(id=job_id, status="ADDED", client_result_id=f"c-{job_id}", model_id="m",
               request={"query": {"fields": ["a.b"]}}, created_at=created, **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> SQLiteJobStore:
    return SQLiteJobStore(tmp_path / "assay.sqlite")


def test_a_job_ends_exactly_once(store: SQLiteJobStore) -> None:
    store.add_jobs([job("a")])
    assert store.start("a", 1.0)
    assert store.finish("a", status="FAILED", at=2.0, error_type="KILL", error_message="stop")
    assert not store.finish("a", status="COMPLETE", at=3.0, result_file="r.arrows")
    assert not store.start("a", 4.0)
    done = store.get_jobs(["a"])["a"]
    assert (done.status, done.error_type, done.result_file, done.attempts) == (
        "FAILED",
        "KILL",
        None,
        1,
    )


def test_a_failed_write_does_not_poison_the_connection(store: SQLiteJobStore) -> None:
    store.add_jobs([job("a")])
    with pytest.raises(sqlite3.IntegrityError):
        store.add_jobs([job("b"), job("a")])  # a duplicate id: the whole batch is refused
    assert store.get_jobs(["b"]) == {}, "nothing of the refused batch was kept"
    store.add_jobs([job("c")])  # and the next write works
    assert set(store.get_jobs(["a", "c"])) == {"a", "c"}


def test_requeue_puts_a_running_job_back_without_counting(store: SQLiteJobStore) -> None:
    store.add_jobs([job("a")])
    store.start("a", 1.0)
    assert store.requeue("a")
    again = store.get_jobs(["a"])["a"]
    assert (again.status, again.attempts, again.started_at) == ("ADDED", 0, None)
    assert [j.id for j in store.unfinished()] == ["a"]


def test_cache_entries_expire(store: SQLiteJobStore) -> None:
    store.remember(CachedResult("k", "r.arrows", {"total_rows": 1}, 1, 10, 1.0, 50.0))
    assert store.cached("k", 49.0) is not None
    assert store.cached("k", 50.0) is None


def test_prune_forgets_old_jobs_and_expired_cache_but_keeps_shared_files(
    store: SQLiteJobStore,
) -> None:
    store.add_jobs([job("old", created=10.0), job("new", created=1000.0)])
    for job_id, name in (("old", "old.arrows"), ("new", "shared.arrows")):
        store.start(job_id, 1.0)
        store.finish(job_id, status="COMPLETE", at=2.0, result_file=name)
    store.remember(CachedResult("k1", "shared.arrows", {}, 1, 1, 1.0, 5000.0))
    store.remember(CachedResult("k2", "expired.arrows", {}, 1, 1, 1.0, 20.0))
    orphans = store.prune(now=100.0, keep_jobs_since=500.0)
    assert sorted(orphans) == ["expired.arrows", "old.arrows"]
    assert set(store.get_jobs(["old", "new"])) == {"new"}
    assert store.cached("k1", 100.0) is not None


def test_keys_are_stored_as_hashes_and_revocable(store: SQLiteJobStore, tmp_path: Path) -> None:
    ann = user_for_email(store, "Ann@Example.com")
    key, token = create_key(store, "pat", user=ann, label="laptop")
    assert token.startswith("assay_pat_") and token not in (
        tmp_path / "assay.sqlite"
    ).read_bytes().decode("latin-1")
    found = store.key_by_hash(hash_token(token))
    assert found is not None and found.user_email == "Ann@Example.com"
    assert found.user_id == ann.id == user_id_for("ann@example.com")
    assert store.revoke_key(key.id, 5.0) and not store.revoke_key(key.id, 6.0)
    assert store.key_by_hash(hash_token(token)).revoked_at == 5.0  # type: ignore[union-attr]
    with pytest.raises(DirectoryError, match="is not one"):
        create_key(store, "org", user=ann)


def test_a_sign_in_is_kept_until_anyone_writes_the_directory(tmp_path: Path) -> None:
    """Kept exactly: one statement when nothing changed; this store's own writes and a commit
    by another connection (``assay keys revoke`` in another process) are seen at once."""
    from assay.counters import STORE_ROUND_TRIPS

    store = SQLiteJobStore(tmp_path / "assay.sqlite")
    other = SQLiteJobStore(tmp_path / "assay.sqlite")  # another process, in effect
    ann = user_for_email(store, "ann@example.com")
    key, token = create_key(store, "pat", user=ann)
    digest = hash_token(token)
    first = store.users.sign_in(digest)
    assert first is not None and first[0].revoked_at is None
    before = store.counters.value(STORE_ROUND_TRIPS, "sqlite")
    assert store.users.sign_in(digest) == first
    assert store.counters.value(STORE_ROUND_TRIPS, "sqlite") - before == 1
    # another connection gives ann a role: seen at the next sign-in
    other.users.set_model_role(ann.id, "m1", "VIEWER")
    found = store.users.sign_in(digest)
    assert found is not None and found[1] is not None and found[1].roles == {"m1": "VIEWER"}
    # another connection revokes the key
    assert other.revoke_key(key.id, 5.0)
    found = store.users.sign_in(digest)
    assert found is not None and found[0].revoked_at == 5.0
    # this store's own writes: a second key, revoked here, then its user deactivated here
    key2, token2 = create_key(store, "pat", user=ann)
    assert store.users.sign_in(hash_token(token2)) is not None
    assert store.revoke_key(key2.id, 6.0)
    found = store.users.sign_in(hash_token(token2))
    assert found is not None and found[0].revoked_at == 6.0
    assert found[1] is not None
    user = store.users.user(ann.id)
    assert user is not None
    store.users.replace_user(replace(user, active=False))
    found = store.users.sign_in(digest)
    assert found is not None and found[1] is not None and not found[1].user.active
    other.close()
    store.close()


def _in_database_file(path: Path, job_id: str) -> bool:
    """Whether the job is in the database file itself, its log left out (read as immutable:
    no log, no lock, no checkpoint of its own)."""
    with closing(sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True)) as db:
        return db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is not None


def test_no_commit_checkpoints_the_log_and_the_checkpointer_does(tmp_path: Path) -> None:
    """A commit that checkpoints waits for two fsyncs, and a request with it: commits leave
    the log alone (it outgrows SQLite's own 1,000-page trigger), and the store's checkpointer
    thread copies it all into the database."""
    path = tmp_path / "assay.sqlite"
    quiet = SQLiteJobStore(path, checkpoint_seconds=3600)  # its thread never runs here
    summary = {"sql": "SELECT 1 -- " + "x" * 3000}  # a large row: a few pages a job
    for i in range(600):
        quiet.add_jobs([job(f"j{i}")])
        quiet.finish(f"j{i}", status="COMPLETE", at=1.0, summary=summary)
    log_bytes = path.with_name(path.name + "-wal").stat().st_size
    assert log_bytes > 1000 * 4096 * 1.5  # never restarted: no commit checkpointed it
    quiet.close()  # the last connection: SQLite checkpoints as it closes
    assert SQLiteJobStore(path).get_jobs(["j599"])["j599"].status == "COMPLETE"

    busy = SQLiteJobStore(path, checkpoint_seconds=0.05)
    busy.add_jobs([job("late")])
    assert not _in_database_file(path, "late")  # in the log only
    deadline = time.monotonic() + 10
    while not _in_database_file(path, "late"):
        assert time.monotonic() < deadline, "the log was never checkpointed"
        time.sleep(0.05)
    busy.close()
