"""`assay store backup`, `verify` and `restore` end to end, on SQLite: a real `assay serve`
answers queries and an AI question, and keeps taking queries while the backup runs. Then the
server stops, the backup is restored into a fresh home, and a new server there serves every
old job id its old rows, the AI answer, and the old keys (a revoked one stays revoked).
Refusals (a running server, bad input) exit 1 with a message and change nothing."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import ASSAY, MODEL_ID, Server, make_home
from tests.server.test_recovery import FAST, rows, wait_lines

pytestmark = pytest.mark.tpch

ENV = {"ASSAY_RUN_WAIT_SECONDS": "0", "ASSAY_WAIT_SECONDS": "2"}
QUESTION = "What is total revenue by region?"


def assay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASSAY, *args], env={**env, "COLUMNS": "200"}, check=False,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def client(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                        timeout=60)  # fmt: skip


def submit(api: httpx.Client, query: dict[str, Any]) -> str | None:
    """A job id at once (run wait 0); None when the key's quota of open jobs is full."""
    body = {"query": {"modelId": MODEL_ID, **query}, "cache": "SkipCache"}
    response = api.post("/api/v1/query/run", json=body)
    if response.status_code == 429:
        return None
    assert response.status_code == 200, response.text
    (job_id,) = json.loads(response.text.splitlines()[0])["jobs_submitted"]
    return str(job_id)


def revoke(server: Server, token: str) -> None:
    """`assay keys revoke` on the key whose listed prefix begins the token."""
    listed = assay(server._env(), "keys", "list")
    assert listed.returncode == 0, listed.stderr
    (key_id,) = [line.split()[0] for line in listed.stdout.splitlines()
                 if token.startswith(line.split()[2].removesuffix("..."))]  # fmt: skip
    assert assay(server._env(), "keys", "revoke", key_id).returncode == 0


def ai_answer(api: httpx.Client) -> tuple[str, dict[str, Any]]:
    created = api.post("/api/v1/ai/jobs", json={"modelId": MODEL_ID, "prompt": QUESTION})
    assert created.status_code == 201, created.text
    job_id = created.json()["jobId"]
    deadline = time.monotonic() + 60
    while api.get(f"/api/v1/ai/jobs/{job_id}").json()["state"] != "COMPLETE":
        assert time.monotonic() < deadline, "the AI job did not complete"
        time.sleep(0.1)
    result: dict[str, Any] = api.get(f"/api/v1/ai/jobs/{job_id}/result").json()
    result.pop("omniChatUrl")  # names the server's address, which changes
    return str(job_id), result


class Writer(threading.Thread):
    """Keeps submitting queries (each of FAST in turn) while the backup runs."""

    def __init__(self, server: Server, token: str) -> None:
        super().__init__(daemon=True)
        self.api = client(server, token)
        self.submitted: list[tuple[str, str]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        names = list(FAST)
        while not self.stopping.is_set():
            name = names[len(self.submitted) % len(names)]
            job_id = submit(self.api, FAST[name][0])
            if job_id is not None:
                self.submitted.append((job_id, name))
            self.stopping.wait(0.05)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        self.api.close()


def job_status(api: httpx.Client, job_id: str) -> int:
    query = urllib.parse.urlencode({"job_ids": json.dumps([job_id])})
    return api.get(f"/api/v1/query/wait?{query}").status_code


def test_back_up_a_live_server_restore_it_into_a_fresh_home_and_serve_the_old_results(
    tmp_path: Path, tpch_path: Path
) -> None:
    old = Server(make_home(tmp_path / "old"), tpch_path, env=ENV).start()
    dest = tmp_path / "backups" / "nightly"
    try:
        org, pat = old.key("--org"), old.key("--user", "ann@example.com")
        gone = old.key("--org")
        revoke(old, gone)
        with client(old, org) as api, client(old, pat) as mine:
            ids = {name: submit(api, query) for name, (query, _) in FAST.items()}
            ann_id = submit(mine, FAST["priority"][0])
            assert ann_id is not None and None not in ids.values()
            lines = wait_lines(api, [*ids.values()], timeout=60)  # type: ignore[list-item]
            expected = {name: rows(lines[str(job_id)]) for name, job_id in ids.items()}
            assert all(expected.values()), expected
            ann_rows = rows(wait_lines(mine, [ann_id], timeout=60)[ann_id])
            ai_id, ai_result = ai_answer(api)

        writer = Writer(old, org)
        writer.start()
        while len(writer.submitted) < 3:
            time.sleep(0.02)
        before_backup = list(writer.submitted)
        taken = assay(old._env(), "store", "backup", str(dest))
        writer.stop()
        assert taken.returncode == 0, taken.stderr
        assert "1 AI job" in taken.stdout and "3 keys" in taken.stdout, taken.stdout
        checked = assay(old._env(), "store", "verify", str(dest))
        assert checked.returncode == 0 and "is a whole backup" in checked.stdout, checked

        # the live home's server is running: restoring over it is refused, and changes nothing
        refused = assay(old._env(), "store", "restore", str(dest))
        assert refused.returncode == 1
        assert "is in use: an `assay serve`" in refused.stderr, refused.stderr
        assert not list(old.home.glob("before-restore-*"))
        with client(old, org) as api:
            assert api.get("/api/v1/whoami").status_code == 200
    finally:
        old.stop()

    new = Server(make_home(tmp_path / "new"), tpch_path, env=ENV)
    restored = assay(new._env(), "store", "restore", str(dest))
    assert restored.returncode == 0, restored.stderr
    assert f"into {new.home}" in restored.stdout
    new.start()
    try:
        with client(new, org) as api, client(new, pat) as mine, client(new, gone) as revoked:
            lines = wait_lines(api, [str(i) for i in ids.values()], timeout=30)
            assert {name: rows(lines[str(i)]) for name, i in ids.items()} == expected
            assert rows(wait_lines(mine, [ann_id], timeout=30)[ann_id]) == ann_rows
            assert mine.get("/api/v1/whoami").json()["user"]["email"] == "ann@example.com"
            assert revoked.get("/api/v1/whoami").status_code == 401
            assert api.get(f"/api/v1/ai/jobs/{ai_id}").json()["state"] == "COMPLETE"
            result = api.get(f"/api/v1/ai/jobs/{ai_id}/result").json()
            result.pop("omniChatUrl")
            assert result == ai_result
            # queries submitted before the backup began are in it (finished, or run again
            # now if they were still queued), with the right rows
            for job_id, name in before_backup:
                assert job_status(api, job_id) == 200, job_id
                line = wait_lines(api, [job_id], timeout=30)[job_id]
                assert rows(line) == expected[name], (job_id, name)
            for job_id, name in writer.submitted[len(before_backup) :]:
                if job_status(api, job_id) == 200:  # taken into the snapshot, or not at all
                    assert rows(wait_lines(api, [job_id], timeout=30)[job_id]) == expected[name]
    finally:
        new.stop()


def test_bad_input_exits_1_with_a_message_and_changes_nothing(
    tmp_path: Path, tpch_path: Path
) -> None:
    home = Server(make_home(tmp_path), tpch_path, env=ENV)
    token = home.key("--org")
    env = home._env()
    store = home.home / "assay.sqlite"
    before = store.read_bytes()

    missing = assay(env, "store", "restore", str(tmp_path / "nowhere"))
    assert missing.returncode == 1
    assert f"There is no backup at {tmp_path / 'nowhere'}" in missing.stderr
    assert f"Nothing in {home.home} was changed." in missing.stderr

    not_a_backup = tmp_path / "downloads"
    not_a_backup.mkdir()
    (not_a_backup / "assay.sqlite").write_bytes(before)
    refused = assay(env, "store", "restore", str(not_a_backup))
    assert refused.returncode == 1 and "it has no assay-backup.json" in refused.stderr

    dest = tmp_path / "backup"
    assert assay(env, "store", "backup", str(dest)).returncode == 0
    again = assay(env, "store", "backup", str(dest))
    assert again.returncode == 1 and "already exists: give a new folder" in again.stderr
    (dest / "assay.sqlite").write_bytes((dest / "assay.sqlite").read_bytes()[:-4096])
    corrupt = assay(env, "store", "restore", str(dest))
    assert corrupt.returncode == 1
    assert "assay.sqlite has" in corrupt.stderr and "damaged or incomplete" in corrupt.stderr
    verify = assay(env, "store", "verify", str(dest))
    assert verify.returncode == 1 and "damaged or incomplete" in verify.stderr

    assert store.read_bytes() == before
    assert sorted(p.name for p in home.home.iterdir() if not p.name.startswith("serve-")) == [
        "assay.sqlite",
        "models",
    ]
    home.start()  # on the store as it was, its key still working
    try:
        with client(home, token) as api:
            assert api.get("/api/v1/whoami").status_code == 200
    finally:
        home.stop()


def test_a_postgresql_store_is_pointed_to_pg_dump(tmp_path: Path, tpch_path: Path) -> None:
    env = Server(make_home(tmp_path), tpch_path)._env()
    env.update(ASSAY_JOB_STORE="postgresql://assay:secret@db.internal/assay",
               ASSAY_JOB_STORE_SCHEMA="prod")  # fmt: skip
    done = assay(env, "store", "backup", str(tmp_path / "b"))
    assert done.returncode == 1
    assert "pg_dump --format=custom --schema=prod" in done.stderr
    assert "secret" not in done.stderr, "no password in messages"
    assert not (tmp_path / "b").exists()
