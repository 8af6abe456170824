"""Backing up a shared PostgreSQL job store as docs/operations.md says: `pg_dump` of the
store's schema while a replica serves (and keeps taking queries), `pg_restore` over it once
the replicas are stopped, and a replica on a fresh home (an empty results folder: results
come back from the database) serves the old job ids their old rows, the AI answer and the
old keys. What happened after the backup (a new key) is gone, as a restore should have it.

Needs this machine's PostgreSQL and its client tools (Debian: postgresql-client); skipped
with the reason without them, failed under CI."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_store_backup import ENV, Writer, ai_answer, client, job_status, submit
from tests.live import POSTGRES_URL, postgres_schema, unavailable
from tests.server.conftest import Server, make_home
from tests.server.test_recovery import FAST, rows, wait_lines

pytestmark = pytest.mark.tpch


@pytest.fixture
def schema() -> Iterator[str]:
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (Debian: apt-get install postgresql-client)")
    with postgres_schema("assay_backup_") as name:
        yield name


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=False, capture_output=True, text=True, timeout=120)


def replica(root: Path, tpch_path: Path, schema: str) -> Server:
    env = {**ENV, "ASSAY_JOB_STORE": POSTGRES_URL, "ASSAY_JOB_STORE_SCHEMA": schema}
    return Server(make_home(root), tpch_path, env=env)


def test_pg_dump_a_live_store_then_pg_restore_it_and_serve_the_old_results(
    tmp_path: Path, tpch_path: Path, schema: str
) -> None:
    dump = tmp_path / "assay-store.dump"
    old = replica(tmp_path / "old", tpch_path, schema).start()
    try:
        org, pat = old.key("--org"), old.key("--user", "ann@example.com")
        with client(old, org) as api, client(old, pat) as mine:
            ids = {name: submit(api, query) for name, (query, _) in FAST.items()}
            ann_id = submit(mine, FAST["priority"][0])
            assert ann_id is not None and None not in ids.values()
            lines = wait_lines(api, [str(i) for i in ids.values()], timeout=60)
            expected = {name: rows(lines[str(job_id)]) for name, job_id in ids.items()}
            ann_rows = rows(wait_lines(mine, [ann_id], timeout=60)[ann_id])
            ai_id, ai_result = ai_answer(api)

        writer = Writer(old, org)
        writer.start()
        while len(writer.submitted) < 3:
            time.sleep(0.02)
        before_backup = list(writer.submitted)
        dumped = run("pg_dump", "--format=custom", f"--schema={schema}", f"--file={dump}",
                     POSTGRES_URL)  # fmt: skip
        writer.stop()
        assert dumped.returncode == 0, dumped.stderr
        listed = run("pg_restore", "--list", str(dump))  # how to check a dump is readable
        assert listed.returncode == 0, listed.stderr
        for table in ("jobs", "result_blobs", "api_keys", "users", "ai_jobs"):
            assert f"TABLE DATA {schema} {table} " in listed.stdout, table
        later = old.key("--org")  # after the backup: the restore must take it away
    finally:
        old.stop()

    restored = run("pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                   f"--dbname={POSTGRES_URL}", str(dump))  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    new = replica(tmp_path / "new", tpch_path, schema).start()
    try:
        assert not list((new.home / "results").glob("*.arrows")), "a fresh home"
        with client(new, org) as api, client(new, pat) as mine, client(new, later) as newer:
            lines = wait_lines(api, [str(i) for i in ids.values()], timeout=30)
            assert {name: rows(lines[str(i)]) for name, i in ids.items()} == expected
            assert rows(wait_lines(mine, [ann_id], timeout=30)[ann_id]) == ann_rows
            assert mine.get("/api/v1/whoami").json()["user"]["email"] == "ann@example.com"
            assert newer.get("/api/v1/whoami").status_code == 401
            result = api.get(f"/api/v1/ai/jobs/{ai_id}/result").json()
            result.pop("omniChatUrl")
            assert result == ai_result
            for job_id, name in before_backup:
                assert job_status(api, job_id) == 200, job_id
                assert rows(wait_lines(api, [job_id], timeout=60)[job_id]) == expected[name]
    finally:
        new.stop()
