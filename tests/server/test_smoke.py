"""The served API answers a real query over loopback, with the rows DuckDB computes."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pyarrow as pa
import pyarrow.ipc

from assay.engines import DuckDBEngine
from tests.server.conftest import MODEL_ID, Server


def test_run_returns_omnis_ndjson_with_duckdbs_rows(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    query = {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders",
             "fields": ["orders.o_orderpriority", "orders.count"],
             "sorts": [{"column_name": "orders.o_orderpriority"}]}  # fmt: skip
    response = api.post("/api/v1/query/run", json={"query": query})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/ndjson")
    lines = [json.loads(x) for x in response.text.splitlines()]
    assert list(lines[0]) == ["jobs_submitted"]
    assert lines[-1] == {"remaining_job_ids": [], "timed_out": "false"}
    job = lines[1]
    assert job["status"] == "COMPLETE"
    table = pa.ipc.open_stream(io.BytesIO(base64.b64decode(job["result"]))).read_all()
    assert table.column_names == ["orders.o_orderpriority", "orders.count"]
    want = tpch_engine.execute(
        "SELECT o_orderpriority, count(*) FROM orders GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    assert [tuple(r.values()) for r in table.to_pylist()] == [tuple(r.values()) for r in want]
    assert job["summary"]["fields"]["orders.count"]["label"] == "Order Count"


def test_health_needs_no_key(server: Server) -> None:
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
