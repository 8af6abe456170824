"""Two real `assay serve` replicas on one PostgreSQL job store (this machine's PostgreSQL),
each with its own home folder (so results can only reach the other replica through the
store), both serving the tpch model on the same DuckDB file."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow as pa
import pytest

from assay.engines import DuckDBEngine
from tests.live import POSTGRES_URL, postgres_schema
from tests.server.conftest import MODEL_ID, SLOW_QUERY, Server, make_home
from tests.server.test_omni_clients import run_sdk

# Takes a few seconds on DuckDB, and finishes: long enough to kill a replica during it.
MEDIUM_VIEW = """
sql: SELECT i % 1000003 AS k FROM range(150000000) t(i)
dimensions:
  k: {primary_key: true}
measures:
  distinct_k: {sql: "${k}", aggregate_type: count_distinct}
"""
MEDIUM_QUERY = {"modelId": MODEL_ID, "join_paths_from_topic_name": "medium",
                "fields": ["medium.distinct_k"]}  # fmt: skip
REVENUE = {"modelId": MODEL_ID, "join_paths_from_topic_name": "lineitem",
           "fields": ["orders.o_orderpriority", "lineitem.revenue"],
           "sorts": [{"column_name": "orders.o_orderpriority"}]}  # fmt: skip
REVENUE_SQL = """
SELECT o_orderpriority, SUM(l_extendedprice * (1 - l_discount)) FROM lineitem
JOIN orders ON o_orderkey = l_orderkey GROUP BY 1 ORDER BY 1
"""
LEASE = "2"


def _home(root: Path) -> Path:
    home = make_home(root)
    models = home / "models" / "tpch"
    (models / "medium.view.yaml").write_text(MEDIUM_VIEW)
    (models / "medium.topic.yaml").write_text("base_view: medium\n")
    return home


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    with postgres_schema("assay_r_") as name:
        yield name


def _replica(root: Path, database: Path, schema: str, **env: str) -> Server:
    settings = {
        "ASSAY_JOB_STORE": POSTGRES_URL,
        "ASSAY_JOB_STORE_SCHEMA": schema,
        "ASSAY_LEASE_SECONDS": LEASE,
        "ASSAY_RUN_WAIT_SECONDS": "0.2",
        "ASSAY_WAIT_SECONDS": "20",
        "ASSAY_WORKERS": "2",
        **env,
    }
    return Server(_home(root), database, env=settings)


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, tpch_path: Path, schema: str
) -> Iterator[tuple[Server, Server]]:
    a = _replica(tmp_path_factory.mktemp("replica-a"), tpch_path, schema).start()
    b = _replica(tmp_path_factory.mktemp("replica-b"), tpch_path, schema).start()
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="module")
def key(pair: tuple[Server, Server]) -> str:
    return pair[0].key("--org")  # created through replica a's settings: it lands in PostgreSQL


def _client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"},
                        timeout=60)  # fmt: skip


def _lines(response: httpx.Response) -> list[dict[str, Any]]:
    import json

    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def _submit(server: Server, key: str, query: dict[str, Any]) -> str:
    with _client(server, key) as api:
        lines = _lines(api.post("/api/v1/query/run", json={"query": query, "cache": "refresh"}))
    remaining = lines[-1].get("remaining_job_ids") or []
    assert remaining, f"expected the query to outlast the run window: {lines}"
    return str(remaining[0])


def _wait(server: Server, key: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with _client(server, key) as api:
        while time.monotonic() < deadline:
            lines = _lines(api.get("/api/v1/query/wait", params={"job_ids": f'["{job_id}"]'}))
            done = [x for x in lines if x.get("job_id") == job_id]
            if done:
                return done[0]
        raise AssertionError(f"job {job_id} did not finish within {timeout} s")


def _table(line: dict[str, Any]) -> pa.Table:
    import base64

    return pa.ipc.open_stream(base64.b64decode(line["result"])).read_all()


def test_run_on_one_replica_and_wait_on_the_other(
    pair: tuple[Server, Server], key: str, tpch_engine: DuckDBEngine
) -> None:
    a, b = pair
    job_id = _submit(a, key, MEDIUM_QUERY)
    line = _wait(b, key, job_id)
    assert line["status"] == "COMPLETE", line
    assert _table(line).column("medium.distinct_k").to_pylist() == [1000003]
    # Replica b never ran it: the result came through the store into b's own folder.
    assert list((a.home / "results").glob("*.arrows"))
    assert list((b.home / "results").glob("*.arrows"))


def test_the_official_sdk_gets_the_same_rows_from_either_replica(
    pair: tuple[Server, Server], key: str, tpch_engine: DuckDBEngine
) -> None:
    a, b = pair
    want = [tuple(r.values()) for r in tpch_engine.execute(REVENUE_SQL).to_pylist()]
    for server in (a, b, a):  # the third call is a cache hit of a result b computed
        table, fields = run_sdk(server, key, REVENUE)
        got = [tuple(r.values()) for r in table.to_pylist()]
        assert got == want
        assert all(isinstance(v, Decimal) for _, v in got)
        assert fields["lineitem.revenue"]["label"] == "Revenue"


def test_a_cancel_through_one_replica_stops_the_query_running_on_the_other(
    pair: tuple[Server, Server], key: str
) -> None:
    a, b = pair
    running = [_submit(a, key, SLOW_QUERY) for _ in range(2)]  # both of a's workers
    with _client(b, key) as api:
        r = api.post("/api/v1/query/cancel", json={"job_ids": running})
        assert r.status_code == 200, r.text
    for job_id in running:
        line = _wait(a, key, job_id, timeout=10)
        assert (line["status"], line.get("error_type")) == ("FAILED", "KILL"), line
    # a's workers are free again: a query that needs one finishes there.
    with _client(a, key) as api:
        lines = _lines(api.post("/api/v1/query/run", json={"query": REVENUE, "cache": "refresh"}))
    remaining = lines[-1].get("remaining_job_ids") or []
    done = [x for x in lines if x.get("status")]
    line = _wait(a, key, str(remaining[0]), timeout=20) if remaining else done[0]
    assert line["status"] == "COMPLETE", line


def test_a_replica_killed_mid_query_has_its_job_finished_by_the_other(
    tmp_path: Path, tpch_path: Path, schema: str, key: str, pair: tuple[Server, Server]
) -> None:
    doomed = _replica(tmp_path / "doomed", tpch_path, schema).start()
    survivor = pair[1]
    try:
        job_id = _submit(doomed, key, MEDIUM_QUERY)
        time.sleep(0.5)  # the query is under way on the doomed replica
        with psycopg.connect(POSTGRES_URL, options=f"-c search_path={schema}") as conn:
            row = conn.execute("SELECT status, owner FROM jobs WHERE id = %s", (job_id,)).fetchone()
        assert row is not None and row[0] == "EXECUTING"
        doomed.stop(signal.SIGKILL)
        line = _wait(survivor, key, job_id, timeout=90)
    finally:
        doomed.stop()
    assert line["status"] == "COMPLETE", line
    assert _table(line).column("medium.distinct_k").to_pylist() == [1000003]
    with psycopg.connect(POSTGRES_URL, options=f"-c search_path={schema}") as conn:
        after = conn.execute(
            "SELECT status, owner, attempts FROM jobs WHERE id = %s", (job_id,)
        ).fetchone()
    assert after is not None
    assert after[0] == "COMPLETE" and after[1] != row[1] and after[2] == 2, after


def test_the_rate_limit_holds_across_replicas(tmp_path: Path, tpch_path: Path, schema: str) -> None:
    limited = {"ASSAY_RATE_LIMIT_PER_MINUTE": "4", "ASSAY_JOB_STORE_SCHEMA": schema + "_rl"}
    a = _replica(tmp_path / "a", tpch_path, schema, **limited).start()
    b = _replica(tmp_path / "b", tpch_path, schema, **limited).start()
    try:
        token = a.key("--org")
        codes = []
        for server in (a, b, a, b, a, b):
            with _client(server, token) as api:
                codes.append(api.get("/api/v1/models").status_code)
        assert codes == [200, 200, 200, 200, 429, 429]
        with _client(b, token) as api:
            r = api.get("/api/v1/models")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    finally:
        a.stop()
        b.stop()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema}_rl CASCADE")


def test_an_ai_job_accepted_by_one_replica_is_answered_by_the_other(
    pair: tuple[Server, Server], key: str
) -> None:
    a, b = pair
    with _client(a, key) as api_a, _client(b, key) as api_b:
        created = api_a.post(
            "/api/v1/ai/jobs", json={"modelId": MODEL_ID, "prompt": "total revenue by region"}
        )
        assert created.status_code == 201, created.text
        job = created.json()
        again = {"modelId": MODEL_ID, "prompt": "again", "conversationId": job["conversationId"]}
        busy = api_b.post("/api/v1/ai/jobs", json=again)
        deadline = time.monotonic() + 30
        while (state := api_b.get(f"/api/v1/ai/jobs/{job['jobId']}").json()["state"]) not in (
            "COMPLETE", "FAILED", "CANCELLED",
        ):  # fmt: skip
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        assert state == "COMPLETE"
        result = api_b.get(f"/api/v1/ai/jobs/{job['jobId']}/result").json()
    # While the first was open, its conversation was busy on the other replica too (unless
    # the first finished before the second arrived: then the second was accepted).
    assert busy.status_code in (201, 409), busy.text
    assert "AMERICA" in result["message"].upper()
