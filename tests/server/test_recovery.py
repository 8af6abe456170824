"""Restart recovery: kill -9 the server while jobs run, start it again on the same home, and
every job id it ever handed out still resolves, through /query/wait, to its right answer.

The slow jobs count `range(N)` in DuckDB: finite, a second or more each. Measured on 2 cores
(2026-12-06), counting 4e9 rows takes about 0.55 s alone (about 7e9 rows/s); the three views
below (8e9, 10e9 and 12e9 rows, 1.1-1.7 s alone) share two workers and all finish a few
seconds after they start. The whole test takes 10-20 s.
"""

from __future__ import annotations

import base64
import io
import json
import re
import signal
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.ipc
import pytest

from assay.engines import DuckDBEngine
from tests.server.conftest import MODEL_ID, Server, make_home

pytestmark = pytest.mark.tpch

SPIN_ROWS = {"spin4": 8_000_000_000, "spin5": 10_000_000_000, "spin6": 12_000_000_000}
SPIN_VIEW = """
sql: SELECT i FROM range({rows}) t(i)
description: Counts {rows} rows; a query on it takes a few seconds.
dimensions:
  i: {{primary_key: true}}
measures:
  count: {{aggregate_type: count}}
"""
FAST: dict[str, tuple[dict[str, Any], str]] = {
    "priority": (
        {"join_paths_from_topic_name": "orders",
         "fields": ["orders.o_orderpriority", "orders.count"],
         "sorts": [{"column_name": "orders.o_orderpriority"}]},
        "SELECT o_orderpriority, count(*) FROM orders GROUP BY 1 ORDER BY 1",
    ),
    "status": (
        {"join_paths_from_topic_name": "orders",
         "fields": ["orders.o_orderstatus", "orders.sum_totalprice"],
         "sorts": [{"column_name": "orders.o_orderstatus"}]},
        "SELECT o_orderstatus, sum(o_totalprice) FROM orders GROUP BY 1 ORDER BY 1",
    ),
    "segment": (
        {"join_paths_from_topic_name": "customer",
         "fields": ["customer.c_mktsegment", "customer.count"],
         "sorts": [{"column_name": "customer.c_mktsegment"}]},
        "SELECT c_mktsegment, count(*) FROM customer GROUP BY 1 ORDER BY 1",
    ),
    "shipmode": (
        {"join_paths_from_topic_name": "lineitem",
         "fields": ["lineitem.l_shipmode", "lineitem.sum_quantity"],
         "sorts": [{"column_name": "lineitem.l_shipmode"}]},
        "SELECT l_shipmode, sum(l_quantity) FROM lineitem GROUP BY 1 ORDER BY 1",
    ),
}  # fmt: skip


def spin_query(view: str) -> dict[str, Any]:
    return {"modelId": MODEL_ID, "join_paths_from_topic_name": view, "fields": [f"{view}.count"]}


@pytest.fixture
def recovering(tmp_path: Path, tpch_path: Path) -> Iterator[Server]:
    """A server of its own (run wait 0, two workers) whose model has the spin views."""
    home = make_home(tmp_path)
    for view, rows in SPIN_ROWS.items():
        (home / "models" / "tpch" / f"{view}.view.yaml").write_text(SPIN_VIEW.format(rows=rows))
        (home / "models" / "tpch" / f"{view}.topic.yaml").write_text(f"base_view: {view}\n")
    env = {"ASSAY_RUN_WAIT_SECONDS": "0", "ASSAY_WAIT_SECONDS": "2", "ASSAY_WORKERS": "2"}
    srv = Server(home, tpch_path, env=env)
    yield srv
    srv.stop(signal.SIGKILL)


def submit(client: httpx.Client, query: dict[str, Any]) -> str:
    """Run wait 0: the id comes back at once, remaining. SkipCache, so no job is a cache hit."""
    body = {"query": {"modelId": MODEL_ID, **query}, "cache": "SkipCache"}
    response = client.post("/api/v1/query/run", json=body)
    assert response.status_code == 200, response.text
    header, footer = (json.loads(x) for x in response.text.splitlines())
    (job_id,) = header["jobs_submitted"]
    assert footer == {"remaining_job_ids": [job_id], "timed_out": "true"}
    return str(job_id)


def wait_lines(client: httpx.Client, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Poll /query/wait as Omni's SDK does (a JSON array, `+` for spaces, only the ids still
    remaining) until none remains; each id's line must come back exactly once."""
    lines: dict[str, dict[str, Any]] = {}
    remaining = list(ids)
    deadline = time.monotonic() + timeout
    while remaining:
        assert time.monotonic() < deadline, f"still remaining after {timeout} s: {remaining}"
        query = urllib.parse.urlencode({"job_ids": json.dumps(remaining)})
        response = client.get(f"/api/v1/query/wait?{query}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/ndjson")
        *job_lines, footer = (json.loads(x) for x in response.text.splitlines())
        for line in job_lines:
            assert line["job_id"] in remaining, f"a line for an id not asked for: {line}"
            assert line["job_id"] not in lines, f"{line['job_id']} came back twice"
            lines[line["job_id"]] = line
        still = footer["remaining_job_ids"]
        assert footer["timed_out"] == ("true" if still else "false")
        assert sorted(still + [x["job_id"] for x in job_lines]) == sorted(remaining)
        remaining = still
    return lines


def rows(line: dict[str, Any]) -> list[tuple[Any, ...]]:
    table = pa.ipc.open_stream(io.BytesIO(base64.b64decode(line["result"]))).read_all()
    return [tuple(r.values()) for r in table.to_pylist()]


def store_rows(server: Server, ids: list[str]) -> dict[str, tuple[str, int]]:
    """(status, attempts) per job, read straight from the job store (read-only; WAL mode lets
    a reader in beside the server)."""
    db = sqlite3.connect(f"file:{server.home / 'assay.sqlite'}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(ids))
        found = db.execute(
            f"SELECT id, status, attempts FROM jobs WHERE id IN ({marks})", ids
        ).fetchall()
    finally:
        db.close()
    return {str(i): (str(s), int(n)) for i, s, n in found}


def kill_while_running(server: Server, slow: list[str], start: int) -> float:
    """SIGKILL the server once two slow jobs are in their `start`-th run (two workers, so the
    third waits), a moment into it; the time of the kill."""
    deadline = time.monotonic() + 15
    while sorted(store_rows(server, slow).values()).count(("EXECUTING", start)) < 2:
        assert time.monotonic() < deadline, store_rows(server, slow)
        time.sleep(0.02)
    time.sleep(0.2)  # well inside the scan: a count of >= 8e9 rows takes a second or more
    assert server.proc is not None and server.proc.poll() is None
    killed_at = time.time()
    server.stop(signal.SIGKILL)
    return killed_at


def rerun_log_ids(server: Server) -> list[str]:
    log = (server.home / f"serve-{server.port}.log").read_text()
    return re.findall(r"re-running job (\S+) left unfinished", log)


def test_kill_9_while_jobs_run_then_every_job_id_resolves(
    recovering: Server, tpch_engine: DuckDBEngine
) -> None:
    """Two crashes: one while the first runs go, one while the re-runs go. Every id ends
    COMPLETE with its right rows; the finished job is served from the store unchanged."""
    server = recovering.start()
    key = server.key("--org")
    headers = {"Authorization": f"Bearer {key}"}
    want = {name: [tuple(r.values()) for r in tpch_engine.execute(sql).to_pylist()]
            for name, (_, sql) in FAST.items()}  # fmt: skip

    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        # A job that completes before the crash.
        before = submit(client, FAST["priority"][0])
        before_line = wait_lines(client, [before], 30)[before]
        assert before_line["status"] == "COMPLETE"
        assert rows(before_line) == want["priority"]

        # Slow jobs (two run, one queues behind them: two workers), then fast ones.
        slow = {submit(client, spin_query(view)): n for view, n in SPIN_ROWS.items()}
        fast = {submit(client, query): name for name, (query, _) in FAST.items()}
    every = [before, *slow, *fast]

    kill_while_running(server, list(slow), start=1)
    at_kill = store_rows(server, every)
    assert set(at_kill) == set(every), "a job id handed out is not in the store"
    assert at_kill[before][0] == "COMPLETE"
    assert all(at_kill[i][0] in {"ADDED", "EXECUTING"} for i in slow), at_kill
    left = sorted(i for i in every if at_kill[i][0] != "COMPLETE")

    # Restart on the same home and port: what was left is run again. Crash during the re-runs.
    server.start()
    killed_at = kill_while_running(server, list(slow), start=2)
    assert sorted(rerun_log_ids(server)) == left

    server.start()
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        lines = wait_lines(client, every, timeout=60)

    assert set(lines) == set(every)  # none lost
    assert {s for s, _ in store_rows(server, every).values()} == {"COMPLETE"}  # none running
    assert set(rerun_log_ids(server)) == set(left)  # and never the finished job
    for job_id, expected in slow.items():
        line = lines[job_id]
        assert line["status"] == "COMPLETE", line
        assert rows(line) == [(expected,)]
        assert line["summary"]["total_rows"] == 1
        # The answer is a re-run's, computed after the last restart.
        computed = datetime.fromisoformat(line["cache_metadata"]["computed_at"])
        assert computed.timestamp() > killed_at, (computed, killed_at)
    for job_id, name in fast.items():
        assert lines[job_id]["status"] == "COMPLETE", lines[job_id]
        assert rows(lines[job_id]) == want[name]
    # The job that was done before the crashes is served from the store, exactly as before.
    assert lines[before] == before_line


def test_graceful_stops_do_not_use_up_attempts(recovering: Server) -> None:
    """A query running across ordinary restarts (SIGTERM, as a deploy does) is put back, not
    counted as a failed attempt: after three restarts it still runs, and ends when cancelled."""
    endless = {"join_paths_from_topic_name": "slow", "fields": ["slow.count"]}
    recovering.start()
    auth = {"Authorization": f"Bearer {recovering.key()}"}
    with httpx.Client(base_url=recovering.url, timeout=30, headers=auth) as client:
        job = submit(client, endless)
    for _ in range(3):
        deadline = time.monotonic() + 15
        while store_rows(recovering, [job])[job][0] != "EXECUTING":
            assert time.monotonic() < deadline, store_rows(recovering, [job])
            time.sleep(0.02)
        recovering.stop(signal.SIGTERM)
        status, attempts = store_rows(recovering, [job])[job]
        assert (status, attempts) == ("ADDED", 0), "a graceful stop puts the job back"
        recovering.start()
    with httpx.Client(base_url=recovering.url, timeout=30, headers=auth) as client:
        client.post("/api/v1/query/cancel", json={"job_ids": [job]})
        line = wait_lines(client, [job], timeout=10)[job]
    assert (line["status"], line["error_type"]) == ("FAILED", "KILL")


def test_a_stop_answers_open_long_polls_at_once(recovering: Server) -> None:
    """uvicorn waits for open requests before it stops; a 30 s long-poll must not hold a
    restart up: it is answered at once with the job still remaining."""
    recovering.env["ASSAY_WAIT_SECONDS"] = "30"
    recovering.start()
    auth = {"Authorization": f"Bearer {recovering.key()}"}
    with httpx.Client(base_url=recovering.url, timeout=60, headers=auth) as client:
        job = submit(client, {"join_paths_from_topic_name": "slow", "fields": ["slow.count"]})
        answer: list[httpx.Response] = []
        poll = threading.Thread(target=lambda: answer.append(
            client.get("/api/v1/query/wait", params={"job_ids": json.dumps([job])})))  # fmt: skip
        poll.start()
        time.sleep(1.0)  # the long-poll is open
        stopping = time.monotonic()
        recovering.stop(signal.SIGTERM)
        stopped_in = time.monotonic() - stopping
        poll.join(10)
    assert stopped_in < 10, f"the stop waited {stopped_in:.1f} s for the long-poll"
    assert answer and answer[0].status_code == 200
    assert json.loads(answer[0].text.splitlines()[-1]) == {
        "remaining_job_ids": [job],
        "timed_out": "true",
    }
