"""A damaged SQLite job store (garbage, truncated, a corrupted page, emptied) stops the real
`assay serve`, `assay keys list` and `assay users list` with a clear message: the path, what
SQLite said, and how to restore; exit code 1, no traceback. Following the printed recovery
commands gives a store the server starts on, with the readable keys still working.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from assay.jobs.model import Job
from assay.jobs.sqlite import SQLiteJobStore
from tests.server.conftest import ASSAY, Server, make_home

PAGE = 4096


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def truncated(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2 + 1000)


def corrupted_page(path: Path) -> None:
    """One page in the middle (job rows or their indexes) overwritten with noise (seeded:
    random bytes could, very rarely, look like a valid page)."""
    with open(path, "r+b") as f:
        f.seek((path.stat().st_size // PAGE // 2) * PAGE)
        f.write(random.Random(7).randbytes(PAGE))


def emptied(path: Path) -> None:
    os.truncate(path, 0)
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))  # not a store being made this moment


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage": (garbage, "SQLite says: file is not a database"),
    "truncated": (truncated, "SQLite says: database disk image is malformed"),
    "corrupted_page": (corrupted_page, "SQLite says: "),
    "emptied": (emptied, "it is empty (0 bytes): it was truncated"),
}


def store_with_history(tmp_path: Path, tpch_path: Path) -> tuple[Server, str]:
    """A home whose store holds an org key and 3,000 finished jobs (about 1,000 pages)."""
    server = Server(make_home(tmp_path), tpch_path)
    token = server.key("--org")
    store = SQLiteJobStore(server.home / "assay.sqlite")
    now = time.time()
    request = {"query": {"fields": ["lineitem.revenue"], "pad": "x" * 900}}
    store.add_jobs(
        Job(id=str(uuid.uuid4()), status="COMPLETE", client_result_id=str(uuid.uuid4()),
            model_id="m", request=request, created_at=now - i, finished_at=now)
        for i in range(3000)
    )  # fmt: skip
    store.close()  # checkpoints and removes the WAL: everything is in the main file now
    assert not Path(f"{server.home / 'assay.sqlite'}-wal").exists()
    return server, token


def assay(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server._env(), "COLUMNS": "80"}  # a narrow terminal: commands must stay whole
    return subprocess.run(
        [ASSAY, *args], env=env, check=False, capture_output=True, text=True, timeout=60
    )


def assert_refused(done: subprocess.CompletedProcess[str], path: Path, said: str) -> None:
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    assert f"The job store {path} is damaged; {said}" in done.stderr
    assert "Assay does not start on a damaged store" in done.stderr
    lines = done.stderr.splitlines()
    assert f"  mv {path} {path}.damaged" in lines  # whole, one command a line
    assert f"  mv {path}-wal {path}.damaged-wal" in lines
    assert any(line.startswith(f"  sqlite3 {path}.damaged .dump | ") for line in lines)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_store_stops_serve_and_the_commands_clearly(
    tmp_path: Path, tpch_path: Path, damage: str
) -> None:
    server, _ = store_with_history(tmp_path, tpch_path)
    path = server.home / "assay.sqlite"
    spoil, said = DAMAGE[damage]
    spoil(path)
    before = path.read_bytes()

    assert_refused(assay(server, "serve", "--port", str(server.port)), path, said)
    assert_refused(assay(server, "keys", "list"), path, said)
    assert_refused(assay(server, "users", "list"), path, said)
    assert path.read_bytes() == before  # nothing was written over what may be recovered
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.url}/health", timeout=1)


def test_the_printed_recovery_gives_a_store_the_server_starts_on(
    tmp_path: Path, tpch_path: Path
) -> None:
    if shutil.which("sqlite3") is None or shutil.which("sed") is None:
        pytest.skip("the sqlite3 command-line tool is not installed (apt-get install sqlite3)")
    server, token = store_with_history(tmp_path, tpch_path)
    path = server.home / "assay.sqlite"
    listed = assay(server, "keys", "list").stdout
    corrupted_page(path)
    refused = assay(server, "keys", "list")
    assert refused.returncode == 1

    commands = [line.strip() for line in refused.stderr.splitlines() if line.startswith("  ")]
    assert len(commands) == 4
    for command in commands:  # as an operator pastes them (the -shm file does not exist)
        subprocess.run(["bash", "-c", command], check=False, capture_output=True, timeout=120)
    assert Path(f"{path}.damaged").exists()

    recovered = assay(server, "keys", "list")
    assert recovered.returncode == 0, recovered.stderr
    assert recovered.stdout == listed  # the key's page was readable: the key survived
    server.start()
    try:
        r = httpx.get(f"{server.url}/api/v1/models", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    finally:
        server.stop()
