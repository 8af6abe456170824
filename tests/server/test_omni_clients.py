"""Omni's own Python clients, unchanged, against a real `assay serve`: the rows they decode are
the rows DuckDB computes for the same question written by hand.

- omni-python-sdk (`OmniAPI(key, base_url).run_query_blocking`): the fast path (the answer in
  /query/run) and the slow path (run wait 0, so the SDK must poll /query/wait).
- omni-app-mcp's `omni_run_query` and `omni_wait_for_query_results` tools, called directly (no
  MCP transport). It sends `accept: application/json`, so Assay answers with one JSON document.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from assay.engines import DuckDBEngine
from tests.server.conftest import MODEL_ID, Server, make_home

pytestmark = pytest.mark.tpch

REVENUE_BY_REGION: dict[str, Any] = {
    "modelId": MODEL_ID,
    "table": "lineitem",
    "join_paths_from_topic_name": "lineitem",
    "fields": ["region.r_name", "lineitem.revenue"],
    "sorts": [{"column_name": "region.r_name", "sort_descending": False}],
    "limit": 1000,
}
REVENUE_BY_REGION_SQL = """
SELECT r.r_name, sum(l.l_extendedprice * (1 - l.l_discount))
FROM lineitem l
LEFT JOIN orders o ON l.l_orderkey = o.o_orderkey
LEFT JOIN customer c ON o.o_custkey = c.c_custkey
LEFT JOIN nation n ON c.c_nationkey = n.n_nationkey
LEFT JOIN region r ON n.n_regionkey = r.r_regionkey
GROUP BY 1 ORDER BY 1
"""
ORDERS_BY_PRIORITY: dict[str, Any] = {
    "modelId": MODEL_ID,
    "table": "orders",
    "join_paths_from_topic_name": "orders",
    "fields": ["orders.o_orderpriority", "orders.count", "orders.sum_totalprice"],
    "sorts": [{"column_name": "orders.o_orderpriority", "sort_descending": False}],
}
ORDERS_BY_PRIORITY_SQL = """
SELECT o_orderpriority, count(*), sum(o_totalprice) FROM orders GROUP BY 1 ORDER BY 1
"""
ORDERS_BY_YEAR: dict[str, Any] = {
    "modelId": MODEL_ID,
    "table": "orders",
    "join_paths_from_topic_name": "orders",
    "fields": ["orders.o_orderdate[year]", "orders.count"],
    "sorts": [{"column_name": "orders.o_orderdate[year]", "sort_descending": False}],
}
ORDERS_BY_YEAR_SQL = """
SELECT date_trunc('year', o_orderdate), count(*) FROM orders GROUP BY 1 ORDER BY 1
"""
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def duckdb_rows(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row.values()) for row in engine.execute(sql).to_pylist()]


def table_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return [tuple(row.values()) for row in table.to_pylist()]


def plain(value: Any) -> Any:
    """A value as omni-app-mcp's JSON output carries it (decimals become floats, dates ISO)."""
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[Server]:
    """/query/run answers at once with every job remaining, so clients must use /query/wait."""
    env = {"ASSAY_RUN_WAIT_SECONDS": "0", "ASSAY_WAIT_SECONDS": "10"}
    srv = Server(make_home(tmp_path_factory.mktemp("slow")), tpch_path, env=env).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def slow_key(slow_server: Server) -> str:
    return slow_server.key("--org")


# ---------------------------------------------------------------------- omni-python-sdk


class RequestLog:
    """Wraps the SDK's `requests.get` / `requests.post` and keeps what went over the wire."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import omni_python_sdk.api as sdk_api

        self.calls: list[tuple[str, str, int, str]] = []
        requests = sdk_api.requests
        for method in ("get", "post"):
            real = getattr(requests, method)
            monkeypatch.setattr(requests, method, self._wrap(method.upper(), real))

    def _wrap(self, method: str, real: Any) -> Any:
        def call(url: str, *args: Any, **kwargs: Any) -> Any:
            response = real(url, *args, **kwargs)
            self.calls.append((method, url, response.status_code, response.text))
            return response

        return call

    def paths(self) -> list[str]:
        return [f"{m} {httpx.URL(u).path}" for m, u, _, _ in self.calls]


def run_sdk(
    server: Server, key: str, query: dict[str, Any], **options: Any
) -> tuple[pa.Table, dict[str, Any]]:
    from omni_python_sdk import OmniAPI

    client = OmniAPI(key, server.url)
    out = client.run_query_blocking({"query": query, **options})
    assert out is not None, "run_query_blocking returned None (it swallows every error)"
    table, fields = out
    assert isinstance(table, pa.Table)
    assert isinstance(fields, dict)
    return table, fields


def test_sdk_fast_query_equals_duckdb(
    server: Server, org_key: str, tpch_engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RequestLog(monkeypatch)
    table, fields = run_sdk(server, org_key, REVENUE_BY_REGION)

    assert table.column_names == REVENUE_BY_REGION["fields"]
    got, want = table_rows(table), duckdb_rows(tpch_engine, REVENUE_BY_REGION_SQL)
    assert len(got) == 5
    assert got == want  # strings and decimals, exactly
    assert all(isinstance(revenue, Decimal) for _, revenue in got)
    assert set(fields) == set(REVENUE_BY_REGION["fields"])
    assert fields["region.r_name"]["label"] == "Region"
    assert fields["lineitem.revenue"]["label"] == "Revenue"
    assert all(isinstance(meta.get("label"), str) and meta["label"] for meta in fields.values())
    # The example in the SDK's README: column labels from the fields dict.
    labels = {name: meta.get("label", name) for name, meta in fields.items()}
    assert [labels[c] for c in table.column_names] == ["Region", "Revenue"]
    # The run window (5 s) was enough: no /query/wait.
    assert log.paths() == ["POST /api/v1/query/run"]


# 20,000 lines, about 480 KB of Arrow: written with compressed buffers (the default codec)
LINES: dict[str, Any] = {
    "modelId": MODEL_ID,
    "table": "lineitem",
    "join_paths_from_topic_name": "lineitem",
    "fields": ["lineitem.l_orderkey", "lineitem.l_linenumber", "lineitem.l_extendedprice"],
    "sorts": [{"column_name": "lineitem.l_orderkey"}, {"column_name": "lineitem.l_linenumber"}],
    "limit": 20_000,
}
LINES_SQL = """
SELECT l_orderkey, l_linenumber, l_extendedprice FROM lineitem
GROUP BY 1, 2, 3 ORDER BY 1, 2 LIMIT 20000
"""


def test_sdk_reads_a_large_result_with_compressed_buffers(
    server: Server, org_key: str, tpch_engine: DuckDBEngine
) -> None:
    table, _ = run_sdk(server, org_key, LINES)
    assert table_rows(table) == duckdb_rows(tpch_engine, LINES_SQL)
    # what went over the wire is an Arrow stream whose record batches are ZSTD-compressed
    body = {"query": LINES}
    response = httpx.post(f"{server.url}/api/v1/query/run", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {org_key}"})  # fmt: skip
    line = next(x for x in map(json.loads, response.text.splitlines()) if "result" in x)
    raw = base64.b64decode(line["result"])
    plain_size = sum(b.nbytes for b in table.to_batches())
    assert len(raw) < plain_size / 2, "the buffers are compressed"
    assert pa.ipc.open_stream(raw).read_all().equals(table)


def test_sdk_date_grain_column_keeps_its_brackets(
    server: Server, org_key: str, tpch_engine: DuckDBEngine
) -> None:
    table, fields = run_sdk(server, org_key, ORDERS_BY_YEAR)

    assert table.column_names == ["orders.o_orderdate[year]", "orders.count"]
    year = fields["orders.o_orderdate[year]"]
    assert year["label"] == "Order Date Year"
    assert year["date_type"] == "YEAR"
    assert pa.types.is_temporal(table.schema.field("orders.o_orderdate[year]").type)
    got = table.column("orders.o_orderdate[year]").to_pylist()
    want = duckdb_rows(tpch_engine, ORDERS_BY_YEAR_SQL)
    assert len(got) == 7  # 1992 .. 1998
    # Compared as dates whatever the temporal type (date or timestamp at midnight).
    assert [v.isoformat()[:10] for v in got] == [y.isoformat()[:10] for y, _ in want]
    assert table.column("orders.count").to_pylist() == [n for _, n in want]


def test_sdk_slow_path_polls_query_wait(
    slow_server: Server, slow_key: str, tpch_engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RequestLog(monkeypatch)
    # SkipCache: a cached answer would be done at submit, and come back in /query/run itself.
    table, fields = run_sdk(slow_server, slow_key, ORDERS_BY_PRIORITY, cache="SkipCache")

    assert table.column_names == ORDERS_BY_PRIORITY["fields"]
    assert table_rows(table) == duckdb_rows(tpch_engine, ORDERS_BY_PRIORITY_SQL)
    assert fields["orders.count"]["label"] == "Order Count"
    # run answered at once with the id remaining; the SDK then polled /query/wait.
    paths = log.paths()
    assert paths[0] == "POST /api/v1/query/run"
    assert "GET /api/v1/query/wait" in paths[1:]
    run_lines = [json.loads(x) for x in log.calls[0][3].splitlines()]
    (job_id,) = run_lines[0]["jobs_submitted"]
    assert run_lines[-1] == {"remaining_job_ids": [job_id], "timed_out": "true"}
    assert len(run_lines) == 2
    # The SDK's wait URL is `job_ids=<urlencoded JSON array>`, as Omni's docs show.
    wait_url = httpx.URL(log.calls[1][1])
    assert json.loads(wait_url.params["job_ids"]) == [job_id]
    wait_lines = [json.loads(x) for x in log.calls[-1][3].splitlines()]
    assert [line.get("job_id") for line in wait_lines[:-1]] == [job_id]
    assert wait_lines[-1] == {"remaining_job_ids": [], "timed_out": "false"}


def test_sdk_slow_path_on_a_query_served_from_cache(
    slow_server: Server, slow_key: str, tpch_engine: DuckDBEngine
) -> None:
    """A cached answer is done at submit: even with run wait 0 it comes back in /query/run."""
    first, _ = run_sdk(slow_server, slow_key, REVENUE_BY_REGION)
    second, _ = run_sdk(slow_server, slow_key, REVENUE_BY_REGION)
    want = duckdb_rows(tpch_engine, REVENUE_BY_REGION_SQL)
    assert table_rows(first) == want
    assert table_rows(second) == want


# ---------------------------------------------------------------------- omni-app-mcp


class RecordingTransport(httpx.AsyncBaseTransport):
    """omni-app-mcp's injectable transport: the real network (a fresh connection pool per
    request, as the tool's per-request AsyncClient closes its transport), each exchange kept."""

    def __init__(self) -> None:
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with httpx.AsyncHTTPTransport() as inner:
            response = await inner.handle_async_request(request)
            content = await response.aread()
        kept = httpx.Response(response.status_code, headers=response.headers, content=content)
        self.exchanges.append((request, kept))
        return httpx.Response(response.status_code, headers=response.headers, content=content)


@pytest.fixture
def mcp_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A factory pointing omni-app-mcp's query tools at a server, as OMNI_BASE_URL/API_KEY do."""
    from omni_mcp.client import OmniClient
    from omni_mcp.config import Settings
    from omni_mcp.tools import queries

    def point_at(server: Server, key: str) -> RecordingTransport:
        monkeypatch.setenv("OMNI_BASE_URL", server.url)
        monkeypatch.setenv("OMNI_API_KEY", key)
        settings = Settings()
        assert settings.api_root == f"{server.url}/api"
        transport = RecordingTransport()
        client = OmniClient(settings, transport=transport)
        monkeypatch.setattr(queries, "get_client", lambda: client)
        return transport

    yield point_at


def mcp_run(**params: Any) -> str:
    from omni_mcp.formatters import ResponseFormat
    from omni_mcp.tools.queries import RunQueryInput, omni_run_query

    inputs = RunQueryInput(response_format=ResponseFormat.JSON, **params)
    text: str = asyncio.run(omni_run_query(inputs))
    return text


def mcp_wait(job_ids: list[str]) -> str:
    from omni_mcp.formatters import ResponseFormat
    from omni_mcp.tools.queries import WaitForQueryResultsInput, omni_wait_for_query_results

    params = WaitForQueryResultsInput(
        job_ids=job_ids,
        max_wait_seconds=60,
        poll_interval_seconds=0.5,
        response_format=ResponseFormat.JSON,
    )
    text: str = asyncio.run(omni_wait_for_query_results(params))
    return text


def check_mcp_result(text: str, query: dict[str, Any], want: list[tuple[Any, ...]]) -> str:
    """The tool's JSON output: a COMPLETE job, nothing remaining, DuckDB's rows; its job id."""
    assert not text.startswith("Error"), text
    out = json.loads(text)
    assert out["status"] == "COMPLETE"
    assert out["timedOut"] is False
    assert out["remainingJobIds"] == []
    assert out["otherResultJobIds"] == []
    assert out["rowCount"] == len(want)
    assert out["truncated"] is False
    fields = out["summary"]["fields"]
    assert list(fields) == query["fields"]
    assert all(meta["label"] for meta in fields.values())
    assert out["summary"]["display_sql"]
    assert out["cacheMetadata"]["num_rows"] == len(want)
    assert [list(row) for row in out["rows"]] == [query["fields"]] * len(want)
    got = [tuple(row[f] for f in query["fields"]) for row in out["rows"]]
    assert got == [tuple(plain(v) for v in row) for row in want]
    job_id: str = out["jobId"]
    return job_id


def test_mcp_run_query_equals_duckdb(
    server: Server, org_key: str, tpch_engine: DuckDBEngine, mcp_client: Any
) -> None:
    transport: RecordingTransport = mcp_client(server, org_key)
    text = mcp_run(query=REVENUE_BY_REGION)
    check_mcp_result(text, REVENUE_BY_REGION, duckdb_rows(tpch_engine, REVENUE_BY_REGION_SQL))
    # It asked for application/json only, and got one JSON document back.
    ((request, response),) = transport.exchanges
    assert request.method == "POST"
    assert request.url.path == "/api/v1/query/run"
    assert request.headers["accept"] == "application/json"
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert doc["timed_out"] is False
    assert doc["remaining_job_ids"] == []
    assert list(doc["jobs_submitted"]) == [doc["job_id"]]


def test_mcp_reads_a_large_result_with_compressed_buffers(
    server: Server, org_key: str, tpch_engine: DuckDBEngine, mcp_client: Any
) -> None:
    mcp_client(server, org_key)
    out = json.loads(mcp_run(query=LINES))
    want = duckdb_rows(tpch_engine, LINES_SQL)
    assert (out["status"], out["rowCount"]) == ("COMPLETE", len(want))
    # the tool shows the first rows only (truncated), decoded from the compressed stream
    shown = [tuple(row[f] for f in LINES["fields"]) for row in out["rows"]]
    assert out["truncated"] is True and 0 < len(shown) < len(want)
    assert shown == [tuple(plain(v) for v in row) for row in want[: len(shown)]]


def test_mcp_first_class_fields_equal_duckdb(
    server: Server, org_key: str, tpch_engine: DuckDBEngine, mcp_client: Any
) -> None:
    """The tool's own inputs (model_id, table, fields, sorts) rather than a raw query."""
    mcp_client(server, org_key)
    text = mcp_run(
        model_id=MODEL_ID,
        table="orders",
        fields=ORDERS_BY_PRIORITY["fields"],
        sorts=ORDERS_BY_PRIORITY["sorts"],
        join_paths_from_topic_name="orders",
        limit=100,
    )
    check_mcp_result(text, ORDERS_BY_PRIORITY, duckdb_rows(tpch_engine, ORDERS_BY_PRIORITY_SQL))


def test_mcp_wait_tool_on_the_session_server(
    server: Server, org_key: str, tpch_engine: DuckDBEngine, mcp_client: Any
) -> None:
    """A job that already finished: the wait tool gets it back at once from /query/wait."""
    mcp_client(server, org_key)
    job_id = check_mcp_result(
        mcp_run(query=ORDERS_BY_YEAR), ORDERS_BY_YEAR, duckdb_rows(tpch_engine, ORDERS_BY_YEAR_SQL)
    )
    again = check_mcp_result(
        mcp_wait([job_id]), ORDERS_BY_YEAR, duckdb_rows(tpch_engine, ORDERS_BY_YEAR_SQL)
    )
    assert again == job_id


def test_mcp_run_then_wait_on_the_run_wait_0_server(
    slow_server: Server, slow_key: str, tpch_engine: DuckDBEngine, mcp_client: Any
) -> None:
    transport: RecordingTransport = mcp_client(slow_server, slow_key)
    query = {
        **ORDERS_BY_PRIORITY,
        "fields": [*ORDERS_BY_PRIORITY["fields"], "orders.count_customers"],
    }
    sql = ORDERS_BY_PRIORITY_SQL.replace(
        "sum(o_totalprice)", "sum(o_totalprice), count(DISTINCT o_custkey)"
    )

    pending = mcp_run(query=query, cache="SkipCache")
    assert pending.startswith("# Query still running"), pending
    job_ids = UUID.findall(pending)
    assert len(job_ids) == 1
    run_doc = transport.exchanges[0][1].json()
    assert run_doc == {"jobs_submitted": {job_ids[0]: run_doc["jobs_submitted"][job_ids[0]]},
                       "remaining_job_ids": job_ids, "timed_out": True}  # fmt: skip

    text = mcp_wait(job_ids)
    assert check_mcp_result(text, query, duckdb_rows(tpch_engine, sql)) == job_ids[0]
    request, response = transport.exchanges[-1]
    assert request.url.path == "/api/v1/query/wait"
    assert json.loads(request.url.params["job_ids"]) == job_ids
    assert response.headers["content-type"].startswith("application/json")
