"""A real server whose results folder is a full disk (a 1 MiB tmpfs, filled) or a read-only
mount: a query whose result cannot be written ends FAILED with a clear error naming the
folder and the system's reason, leaves no partial file, caches nothing; the server keeps
answering /health and cached queries, and runs new queries again once space is freed or the
folder is writable again. One worker, so a worker lost to the failure would show.

Mounting needs root; where it is refused these tests skip saying why (under CI they fail).
``chmod`` cannot make the folder read-only here: root writes through permission bits.
"""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.results.mounts import read_only, tiny_disk
from tests.server.conftest import ASSAY, MODEL_ID, Server, make_home

SMALL = {"modelId": MODEL_ID, "join_paths_from_topic_name": "lineitem",
         "fields": ["region.r_name"]}  # fmt: skip
# About 80 KB as an Arrow stream: it does not fit a full disk, and fits once space is freed.
LARGER = {"modelId": MODEL_ID, "join_paths_from_topic_name": "lineitem",
          "fields": ["lineitem.l_orderkey"], "limit": 10_000}  # fmt: skip
ENV = {"ASSAY_WORKERS": "1", "ASSAY_RUN_WAIT_SECONDS": "30"}


def run(server: Server, key: str, query: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"},
                      timeout=60) as api:  # fmt: skip
        r = api.post("/api/v1/query/run", json={"query": query})
    assert r.status_code == 200, r.text
    lines = [json.loads(x) for x in r.text.splitlines() if x.strip()]
    return next(x for x in lines if x.get("job_id"))


def fill(folder: Path) -> Path:
    """Write a file into ``folder`` until its disk is full."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def assert_unwritable(line: dict[str, Any], folder: Path, reason: str) -> None:
    assert (line["status"], line["error_type"]) == ("FAILED", "INTERNAL"), line
    message = line["error_message"]
    assert f"Cannot write the query's result to the results folder {folder}: {reason}." in message
    assert "then run the query again" in message
    assert "result" not in line and "cache_metadata" not in line


def test_a_full_results_disk_fails_the_query_clearly_and_recovers(
    tmp_path: Path, tpch_path: Path
) -> None:
    home = make_home(tmp_path)
    results = home / "results"
    with tiny_disk(results, "1m"):
        server = Server(home, tpch_path, env=ENV).start()
        try:
            key = server.key("--org")
            small = run(server, key, SMALL)
            assert small["status"] == "COMPLETE", small
            filler = fill(results)

            full = run(server, key, LARGER)
            assert_unwritable(full, results, "No space left on device")
            assert "free space" in full["error_message"]
            # No partial file: the filler and the small result only.
            assert sorted(p.name for p in results.iterdir()) == sorted(
                ["filler", result_file(server, small["job_id"])]
            )

            assert httpx.get(f"{server.url}/health").status_code == 200
            cached = run(server, key, SMALL)  # served from its file on the full disk
            assert cached["status"] == "COMPLETE" and cached["summary"]["cache_type"] == "EXACT"
            assert cached["result"] == small["result"]

            filler.unlink()  # space is freed
            again = run(server, key, LARGER)
            assert again["status"] == "COMPLETE", again
            assert again["summary"]["cache_type"] == "MISS"  # the failure had cached nothing
            assert again["summary"]["total_rows"] == 10_000
        finally:
            server.stop()


def result_file(server: Server, job_id: str) -> str:
    """The result file of a finished job, as the job store recorded it."""
    db = sqlite3.connect(server.home / "assay.sqlite")
    try:
        row = db.execute("SELECT result_file FROM jobs WHERE id = ?", (job_id,)).fetchone()
    finally:
        db.close()
    return str(row[0])


def test_a_read_only_results_folder_fails_the_query_clearly_and_recovers(
    tmp_path: Path, tpch_path: Path
) -> None:
    home = make_home(tmp_path)
    results = home / "results"
    with read_only(results) as mount:
        server = Server(home, tpch_path, env=ENV).start()  # the folder exists: it starts
        try:
            key = server.key("--org")
            failed = run(server, key, SMALL)
            assert_unwritable(failed, results, "Read-only file system")
            assert "mount it read-write" in failed["error_message"]
            assert httpx.get(f"{server.url}/health").status_code == 200

            mount.writable()
            done = run(server, key, SMALL)
            assert done["status"] == "COMPLETE" and done["summary"]["cache_type"] == "MISS"
            assert list(results.glob("*.tmp")) == []
        finally:
            server.stop()


def test_a_results_folder_that_cannot_be_made_stops_serve_clearly(
    tmp_path: Path, tpch_path: Path
) -> None:
    home = make_home(tmp_path)
    (home / "results").write_text("a file in the way")
    server = Server(home, tpch_path)
    done = subprocess.run([ASSAY, "serve", "--port", str(server.port)], env=server._env(),
                          check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"Cannot create the results folder {home / 'results'}: File exists." in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
