"""``POST /api/v1/query/run``: Omni's wire contract (shared/docs/omni-contract.md section 2.1).

Every answer is checked as a client sees it over loopback: status, content type, framing, the
exact messages, and rows equal to the same SQL run directly in DuckDB.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import sqlite3
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.ipc
import pytest

from assay.engines import DuckDBEngine
from tests.server.conftest import MODEL_ID, SLOW_QUERY, Server

RUN = "/api/v1/query/run"
ERROR_KEYS = {"detail", "status", "error", "message"}


# ---------------------------------------------------------------------- helpers


def orders_query(**extra: Any) -> dict[str, Any]:
    """Orders by priority: five groups, sorted, so rows are comparable with DuckDB's."""
    return {
        "modelId": MODEL_ID,
        "join_paths_from_topic_name": "orders",
        "fields": ["orders.o_orderpriority", "orders.count"],
        "sorts": [{"column_name": "orders.o_orderpriority"}],
        **extra,
    }


PRIORITY_SQL = "SELECT o_orderpriority, count(*) FROM orders GROUP BY 1 ORDER BY 1"


def unique_limit() -> int:
    """A limit no other test uses: a query (and so a cache key) of this test's own. Any limit
    above 5 returns the same five rows."""
    return 100 + uuid.uuid4().int % 10**9


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    """The lines of an NDJSON answer, checking Omni's framing: 200, ``text/ndjson``, one JSON
    object per line, each ended by a newline (the last too), no blank lines."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "text/ndjson"
    text = response.text
    assert text.endswith("\n")
    raw = text[:-1].split("\n")
    assert all(raw), f"blank line in {text!r}"
    lines = [json.loads(line) for line in raw]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def run_lines(api: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    return ndjson(api.post(RUN, json=body))


def run_lines_with(api: httpx.Client, body: dict[str, Any], accept: str) -> list[dict[str, Any]]:
    return ndjson(api.post(RUN, json=body, headers={"Accept": accept}))


def single_job(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The job line of a one-job run that finished in the window (header, job, footer)."""
    assert len(lines) == 3, lines
    header, job, footer = lines
    assert header == {"jobs_submitted": {job["job_id"]: job["client_result_id"]}}
    assert footer == {"remaining_job_ids": [], "timed_out": "false"}
    return job


def run_job(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    return single_job(run_lines(api, body))


def arrow(job: dict[str, Any]) -> pa.Table:
    """The job's result: base64 of an Arrow IPC *stream* (what omni-python-sdk decodes)."""
    return pa.ipc.open_stream(io.BytesIO(base64.b64decode(job["result"]))).read_all()


def rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return [tuple(row.values()) for row in table.to_pylist()]


def duck(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    return rows(engine.execute(sql))


def job_count(server: Server) -> int:
    """Jobs in the server's store (read-only), to show a request made none."""
    uri = f"file:{server.home / 'assay.sqlite'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])


def open_job_ids(server: Server) -> list[str]:
    """Jobs not yet ended, read from the server's store: the id of a job whose /query/run is
    still waiting (tests in one process run one at a time, so it is the only one)."""
    uri = f"file:{server.home / 'assay.sqlite'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        found = db.execute("SELECT id FROM jobs WHERE status IN ('ADDED', 'EXECUTING')")
        return [str(r[0]) for r in found]


def wait_lines(api: httpx.Client, ids: list[str]) -> list[dict[str, Any]]:
    return ndjson(api.get("/api/v1/query/wait", params={"job_ids": json.dumps(ids)}))


def cancel(api: httpx.Client, ids: list[str]) -> None:
    response = api.post("/api/v1/query/cancel", json={"job_ids": ids})
    assert response.status_code == 200, response.text


def assert_error(response: httpx.Response, status: int, message: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) >= ERROR_KEYS
    assert body["detail"] == message
    assert body["message"] == message
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    return body


# ---------------------------------------------------------------------- the NDJSON stream


def test_default_answer_is_ndjson_header_job_and_string_footer(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    query = orders_query()
    job = run_job(api, {"query": query})
    assert job["status"] == "COMPLETE"
    assert uuid.UUID(job["job_id"]) and uuid.UUID(job["client_result_id"])
    assert {"summary", "cache_metadata", "query", "result", "stream_stats"} <= set(job)
    assert "error_type" not in job and "error_message" not in job
    assert job["query"] == query
    assert isinstance(job["stream_stats"]["server_stream"], int)
    assert rows(arrow(job)) == duck(tpch_engine, PRIORITY_SQL)


def test_clients_that_also_accept_ndjson_or_anything_keep_the_stream(
    api: httpx.Client,
) -> None:
    """Only a client asking for application/json *alone* gets one document; a browser-like
    Accept list (or ndjson) keeps the stream."""
    for accept in ("text/ndjson", "application/json, text/plain, */*", "*/*"):
        lines = run_lines_with(api, {"query": orders_query()}, accept)
        assert lines[-1] == {"remaining_job_ids": [], "timed_out": "false"}


def test_unstable_alias_serves_the_same_contract(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    job = single_job(ndjson(api.post("/api/unstable/query/run", json={"query": orders_query()})))
    assert job["status"] == "COMPLETE"
    assert rows(arrow(job)) == duck(tpch_engine, PRIORITY_SQL)


def test_accept_application_json_alone_gets_one_document(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    response = api.post(RUN, json={"query": orders_query()}, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    doc = response.json()
    assert doc["status"] == "COMPLETE"
    assert uuid.UUID(doc["job_id"])
    assert doc["remaining_job_ids"] == []
    assert doc["timed_out"] is False
    assert "jobs" not in doc  # only one job finished
    assert {"summary", "cache_metadata", "query", "result", "client_result_id"} <= set(doc)
    assert rows(arrow(doc)) == duck(tpch_engine, PRIORITY_SQL)


# ---------------------------------------------------------------------- summary and metadata


def test_summary_and_cache_metadata_carry_omnis_fields(api: httpx.Client) -> None:
    job = run_job(api, {"query": orders_query(limit=unique_limit())})
    summary = job["summary"]
    assert isinstance(summary["display_sql"], str) and "SELECT" in summary["display_sql"]
    assert isinstance(summary["sql"], str) and "SELECT" in summary["sql"]
    fields = summary["fields"]
    assert list(fields) == ["orders.o_orderpriority", "orders.count"]
    priority, count = fields["orders.o_orderpriority"], fields["orders.count"]
    assert (priority["label"], priority["data_type"], priority["is_dimension"]) == (
        "Order Priority", "STRING", True,
    )  # fmt: skip
    assert (count["label"], count["data_type"], count["is_dimension"]) == (
        "Order Count", "NUMBER", False,
    )  # fmt: skip
    assert summary["total_rows"] == 5
    assert isinstance(summary["execution_time_ms"], int | float)
    assert summary["execution_time_ms"] >= 0
    assert summary["cache_type"] == "MISS"
    assert summary["missing_fields"] == []
    assert "row_limit_reached" not in summary
    meta = job["cache_metadata"]
    assert meta["num_rows"] == 5
    assert isinstance(meta["num_bytes"], int) and meta["num_bytes"] > 0
    computed = datetime.fromisoformat(meta["computed_at"])
    expires = datetime.fromisoformat(meta["expires_at"])
    assert computed.tzinfo is not None and expires > computed


@pytest.mark.parametrize(
    ("query", "sql"),
    [
        pytest.param(
            {"join_paths_from_topic_name": "orders",
             "fields": ["orders.o_orderdate[year]", "orders.count", "orders.sum_totalprice"],
             "sorts": [{"column_name": "orders.o_orderdate[year]"}]},
            "SELECT date_trunc('year', o_orderdate)::TIMESTAMP, count(*), sum(o_totalprice) "
            "FROM orders GROUP BY 1 ORDER BY 1",
            id="year-grain",
        ),
        pytest.param(
            {"join_paths_from_topic_name": "lineitem",
             "fields": ["region.r_name", "lineitem.revenue"],
             "sorts": [{"column_name": "region.r_name"}]},
            "SELECT r_name, sum(l_extendedprice * (1 - l_discount)) FROM lineitem "
            "JOIN orders ON l_orderkey = o_orderkey JOIN customer ON o_custkey = c_custkey "
            "JOIN nation ON c_nationkey = n_nationkey JOIN region ON n_regionkey = r_regionkey "
            "GROUP BY 1 ORDER BY 1",
            id="joins",
        ),
        pytest.param(
            {"join_paths_from_topic_name": "orders",
             "fields": ["orders.o_orderpriority", "orders.count", "orders.sum_totalprice"],
             "filters": {
                 "orders.o_orderdate": {"type": "date", "kind": "BETWEEN",
                                        "left_side": "1995-01-01", "right_side": "1996-01-01"},
                 "orders.o_orderstatus": {"type": "string", "kind": "EQUALS",
                                          "values": ["F", "P"]}},
             "sorts": [{"column_name": "orders.o_orderpriority", "sort_descending": True}]},
            "SELECT o_orderpriority, count(*), sum(o_totalprice) FROM orders "
            "WHERE o_orderdate >= DATE '1995-01-01' AND o_orderdate < DATE '1996-01-01' "
            "AND o_orderstatus IN ('F', 'P') GROUP BY 1 ORDER BY 1 DESC",
            id="filters",
        ),
    ],
)  # fmt: skip
def test_results_equal_duckdbs_own_sql(
    api: httpx.Client, tpch_engine: DuckDBEngine, query: dict[str, Any], sql: str
) -> None:
    job = run_job(api, {"query": {"modelId": MODEL_ID, **query}})
    assert job["status"] == "COMPLETE", job
    table = arrow(job)
    want = duck(tpch_engine, sql)
    assert rows(table) == want
    assert job["summary"]["total_rows"] == len(want) == job["cache_metadata"]["num_rows"]


def test_arrow_columns_are_named_by_the_requested_field_strings(api: httpx.Client) -> None:
    fields = ["orders.o_orderdate[year]", "orders.o_orderdate[month_num]", "orders.count"]
    job = run_job(api, {"query": {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders",
                                  "fields": fields}})  # fmt: skip
    assert job["status"] == "COMPLETE", job
    assert arrow(job).column_names == fields
    assert list(job["summary"]["fields"]) == fields


def test_row_limit_reached_only_when_the_limit_cut_rows(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    cut = run_job(api, {"query": orders_query(limit=2)})
    assert cut["summary"]["row_limit_reached"] is True
    assert rows(arrow(cut)) == duck(tpch_engine, PRIORITY_SQL + " LIMIT 2")
    assert cut["summary"]["total_rows"] == 2 == cut["cache_metadata"]["num_rows"]
    exact = run_job(api, {"query": orders_query(limit=5)})  # exactly the five groups
    assert "row_limit_reached" not in exact["summary"]
    assert exact["summary"]["total_rows"] == 5


def test_the_default_limit_is_1000_and_null_means_no_limit(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    query = {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders",
             "fields": ["orders.o_orderdate[date]", "orders.count"],
             "sorts": [{"column_name": "orders.o_orderdate[date]"}]}  # fmt: skip
    sql = "SELECT o_orderdate, count(*) FROM orders GROUP BY 1 ORDER BY 1"
    want = duck(tpch_engine, sql)
    assert len(want) > 1000
    default = run_job(api, {"query": query})
    assert default["summary"]["row_limit_reached"] is True
    assert default["summary"]["total_rows"] == 1000
    assert rows(arrow(default)) == want[:1000]
    unlimited = run_job(api, {"query": {**query, "limit": None}})
    assert "row_limit_reached" not in unlimited["summary"]
    assert unlimited["summary"]["total_rows"] == len(want)
    assert rows(arrow(unlimited)) == want


def test_an_invalid_grain_completes_and_lists_the_field_as_missing(api: httpx.Client) -> None:
    query = {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders",
             "fields": ["orders.o_orderdate[fortnight]", "orders.count"]}  # fmt: skip
    job = run_job(api, {"query": query})
    assert job["status"] == "COMPLETE"
    assert job["summary"]["missing_fields"] == ["orders.o_orderdate[fortnight]"]
    assert arrow(job).column_names == ["orders.count"]
    assert rows(arrow(job)) == [(150000,)]


# ---------------------------------------------------------------------- failed jobs


def test_a_mistyped_field_is_a_failed_plan_line_suggesting_the_right_name(
    api: httpx.Client,
) -> None:
    query = orders_query(fields=["orders.o_orderpriority", "orders.cont"])
    job = run_job(api, {"query": query})
    assert job["status"] == "FAILED"
    assert job["error_type"] == "PLAN"
    assert 'No such field "orders.cont"' in job["error_message"]
    assert 'Did you mean "orders.count"' in job["error_message"]
    assert "result" not in job and "cache_metadata" not in job
    assert job["query"] == query


def test_a_mistyped_field_with_result_type_is_a_400_naming_it(api: httpx.Client) -> None:
    response = api.post(RUN, json={"query": orders_query(fields=["orders.cont"]),
                                   "resultType": "csv"})  # fmt: skip
    assert response.status_code == 400
    body = response.json()
    assert set(body) >= ERROR_KEYS
    assert 'Did you mean "orders.count"' in body["detail"]
    assert body["error_type"] == "PLAN"


def test_an_unknown_topic_is_a_failed_plan_line(api: httpx.Client) -> None:
    job = run_job(api, {"query": orders_query(join_paths_from_topic_name="nope")})
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert "nope" in job["error_message"]


def test_a_pivot_outside_fields_is_a_failed_plan_line(api: httpx.Client) -> None:
    job = run_job(api, {"query": orders_query(pivots=["orders.o_orderstatus"])})
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert '"orders.o_orderstatus" is not in query.fields' in job["error_message"]


# ---------------------------------------------------------------------- resultType documents


def test_result_type_csv_is_duckdbs_rows(api: httpx.Client, tpch_engine: DuckDBEngine) -> None:
    response = api.post(RUN, json={"query": orders_query(), "resultType": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "text/csv"
    header, *data = list(csv.reader(io.StringIO(response.text)))
    assert len(header) == 2
    assert data == [[str(v) for v in row] for row in duck(tpch_engine, PRIORITY_SQL)]


def test_result_type_json_rows_are_keyed_by_display_label(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    response = api.post(RUN, json={"query": orders_query(), "resultType": "json"})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    want = [{"Order Priority": p, "Order Count": n} for p, n in duck(tpch_engine, PRIORITY_SQL)]
    assert response.json() == want


def test_result_type_xlsx_is_a_workbook(api: httpx.Client) -> None:
    response = api.post(RUN, json={"query": orders_query(), "resultType": "xlsx"})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/vnd.ms-excel"
    assert response.content.startswith(b"PK")
    with zipfile.ZipFile(io.BytesIO(response.content)) as book:
        names = book.namelist()
        assert "xl/workbook.xml" in names
        assert any(n.startswith("xl/worksheets/") for n in names)


def test_format_results_formats_currency(api: httpx.Client) -> None:
    query = orders_query(fields=["orders.o_orderpriority", "orders.sum_totalprice"])
    response = api.post(RUN, json={"query": query, "resultType": "csv", "formatResults": True})
    assert response.status_code == 200
    _, *data = list(csv.reader(io.StringIO(response.text)))
    assert all(row[1].startswith("$") for row in data), data


# ---------------------------------------------------------------------- planOnly


def test_plan_only_is_a_planned_line_with_sql_and_fields_and_no_result(api: httpx.Client) -> None:
    before = api.post(RUN, json={"query": orders_query(), "planOnly": True})
    job = single_job(ndjson(before))
    assert job["status"] == "PLANNED"
    assert "SELECT" in job["summary"]["display_sql"]
    assert list(job["summary"]["fields"]) == ["orders.o_orderpriority", "orders.count"]
    assert job["summary"]["fields"]["orders.count"]["label"] == "Order Count"
    assert "result" not in job and "cache_metadata" not in job
    assert job["query"] == orders_query()


def test_plan_only_with_result_type_is_400(api: httpx.Client, server: Server) -> None:
    jobs = job_count(server)
    response = api.post(RUN, json={"query": orders_query(), "planOnly": True, "resultType": "csv"})
    assert_error(response, 400, "planOnly cannot be combined with resultType")
    assert job_count(server) == jobs


def test_format_results_without_result_type_is_400(api: httpx.Client, server: Server) -> None:
    jobs = job_count(server)
    response = api.post(RUN, json={"query": orders_query(), "formatResults": True})
    assert_error(response, 400, "formatResults is only valid with resultType")
    assert job_count(server) == jobs


def test_a_per_request_timezone_is_400_as_omni_answers_without_user_timezones(
    api: httpx.Client, server: Server
) -> None:
    """Omni honours ``timezone`` only on a connection that allows user-specific time zones;
    Assay's model sets one query zone for everyone, so the request is refused, never run in a
    zone it did not ask for. ``null`` is no zone."""
    jobs = job_count(server)
    response = api.post(RUN, json={"query": orders_query(), "timezone": "America/New_York"})
    assert_error(response, 400, "The timezone parameter requires user-specific timezones to be "
                 "enabled on the connection.")  # fmt: skip
    assert job_count(server) == jobs
    response = api.post(RUN, json={"query": orders_query(), "timezone": None})
    assert response.status_code == 200


def test_an_unknown_result_type_is_400(api: httpx.Client) -> None:
    response = api.post(RUN, json={"query": orders_query(), "resultType": "pdf"})
    assert_error(response, 400, 'resultType: Invalid option: expected one of "csv"|"json"|"xlsx"')


# ---------------------------------------------------------------------- cache


def test_cache_miss_then_exact_then_skip_cache_misses_again(api: httpx.Client) -> None:
    body = {"query": orders_query(limit=unique_limit())}
    first = run_job(api, body)
    assert first["summary"]["cache_type"] == "MISS"
    second = run_job(api, body)
    assert second["summary"]["cache_type"] == "EXACT"
    assert second["job_id"] != first["job_id"]
    assert rows(arrow(second)) == rows(arrow(first))
    assert second["cache_metadata"]["computed_at"] == first["cache_metadata"]["computed_at"]
    assert second["summary"]["total_rows"] == first["summary"]["total_rows"] == 5
    third = run_job(api, {**body, "cache": "SkipCache"})
    assert third["summary"]["cache_type"] == "MISS"
    assert rows(arrow(third)) == rows(arrow(first))
    assert third["cache_metadata"]["computed_at"] >= first["cache_metadata"]["computed_at"]


def server_timing(response: httpx.Response) -> dict[str, float]:
    """``Server-Timing: auth;dur=0.21, parse;dur=0.09, ...`` as {stage: milliseconds}."""
    stages = {}
    for part in response.headers["server-timing"].split(","):
        name, _, duration = part.strip().partition(";dur=")
        stages[name] = float(duration)
    return stages


def test_server_timing_breaks_a_run_down_by_stage(api: httpx.Client) -> None:
    """Where a query's time went, for a browser's network panel or bench/request_path.py:
    each stage once, in order, none negative, adding up to no more than the whole request.
    (On this store of one process the job's row is written while its engine work starts: no
    stage of its own.)"""
    body = {"query": orders_query(limit=unique_limit())}
    start = time.perf_counter()
    miss = api.post(RUN, json=body)
    took_ms = (time.perf_counter() - start) * 1000
    stages = server_timing(miss)
    assert list(stages) == ["auth", "parse", "compile", "queue", "run", "record", "wake",
                            "answer"]  # fmt: skip
    assert all(ms >= 0 for ms in stages.values())
    assert sum(stages.values()) <= took_ms
    hit = server_timing(api.post(RUN, json=body))  # answered from the cache: no job to run
    assert list(hit) == ["auth", "parse", "compile", "answer"]


def test_a_cache_hit_reports_its_own_missing_fields(api: httpx.Client) -> None:
    """An invalid grain is dropped, so this query compiles to the same SQL as the plain one."""
    limit = unique_limit()
    plain = {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders",
             "fields": ["orders.count"], "limit": limit}  # fmt: skip
    assert run_job(api, {"query": plain})["summary"]["missing_fields"] == []
    bad_grain = {**plain, "fields": ["orders.o_orderdate[fortnight]", "orders.count"]}
    job = run_job(api, {"query": bad_grain})
    assert job["summary"]["cache_type"] == "EXACT"
    assert job["summary"]["missing_fields"] == ["orders.o_orderdate[fortnight]"]


@pytest.mark.parametrize(
    ("cache", "cache_type"),
    [("Standard", "EXACT"), ("SkipRequery", "EXACT"), ("normal", "EXACT"),
     ("SkipCache", "MISS"), ("SkipCacheAndRebuildExtracts", "MISS"), ("refresh", "MISS"),
     ("disabled", "MISS"), ("refresh_all", "MISS")],
)  # fmt: skip
def test_cache_values_and_the_specs_aliases(api: httpx.Client, cache: str, cache_type: str) -> None:
    body = {"query": orders_query(limit=unique_limit())}
    assert run_job(api, body)["summary"]["cache_type"] == "MISS"  # now cached
    job = run_job(api, {**body, "cache": cache})
    assert job["status"] == "COMPLETE"
    assert job["summary"]["cache_type"] == cache_type


def test_an_unknown_cache_value_is_400_naming_the_options(
    api: httpx.Client, server: Server
) -> None:
    jobs = job_count(server)
    response = api.post(RUN, json={"query": orders_query(), "cache": "sometimes"})
    body = assert_error(response, 400, response.json()["detail"])
    assert body["detail"].startswith("cache: Invalid option: expected one of ")
    for option in ("Standard", "SkipRequery", "SkipCache", "normal", "refresh", "disabled",
                   "refresh_all"):  # fmt: skip
        assert f'"{option}"' in body["detail"]
    assert job_count(server) == jobs


# ---------------------------------------------------------------------- userId and branchId


def test_user_id_in_query_string_and_body_is_400(api: httpx.Client) -> None:
    user = str(uuid.uuid4())
    response = api.post(RUN, params={"userId": user}, json={"query": orders_query(),
                                                            "userId": user})  # fmt: skip
    assert_error(response, 400, "userId may be given in the query string or in the body, not both")


def test_branch_id_inside_the_query_is_400(api: httpx.Client, server: Server) -> None:
    jobs = job_count(server)
    response = api.post(RUN, json={"query": orders_query(branchId=str(uuid.uuid4()))})
    assert_error(response, 400, "query.branchId: branchId belongs at the top level of the body")
    assert job_count(server) == jobs


def test_top_level_branch_id_is_404(api: httpx.Client, server: Server) -> None:
    branch = str(uuid.uuid4())
    jobs = job_count(server)
    response = api.post(RUN, json={"query": orders_query(), "branchId": branch})
    assert_error(response, 404, f"Branch {branch} not found")
    legacy = api.post(RUN, params={"branch_id": branch}, json={"query": orders_query()})
    assert_error(legacy, 404, f"Branch {branch} not found")
    assert job_count(server) == jobs


# ---------------------------------------------------------------------- malformed requests


MALFORMED: list[Any] = [
    pytest.param(b"this is not json", "Unable to parse the request body as JSON", id="not-json"),
    pytest.param(b"", "Invalid input: expected object, received undefined", id="empty"),
    pytest.param(b"[1, 2]", "Invalid input: expected object, received array", id="array"),
    pytest.param(b"{}", "query: Invalid input: expected object, received undefined",
                 id="no-query"),
    pytest.param({"query": {}}, "query.modelId: Invalid input: expected string, received undefined",
                 id="no-model-id"),
    pytest.param({"query": {"modelId": "not-a-uuid", "fields": []}},
                 "query.modelId: Invalid uuid", id="model-id-not-uuid"),
    pytest.param({"query": {"modelId": MODEL_ID}},
                 "query.fields: Invalid input: expected array of strings, received undefined",
                 id="no-fields"),
    pytest.param({"query": {"modelId": MODEL_ID, "fields": [1]}},
                 "query.fields: Invalid input: expected array of strings, received array",
                 id="fields-not-strings"),
    pytest.param({"query": orders_query(limit=0)},
                 "query.limit: expected a positive integer or null, received 0", id="limit-0"),
    pytest.param({"query": orders_query(limit=-3)},
                 "query.limit: expected a positive integer or null, received -3",
                 id="limit-negative"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), MALFORMED)
def test_malformed_bodies_are_400_before_any_job(
    api: httpx.Client, server: Server, body: Any, message: str
) -> None:
    jobs = job_count(server)
    if isinstance(body, bytes):
        response = api.post(RUN, content=body, headers={"Content-Type": "application/json"})
    else:
        response = api.post(RUN, json=body)
    assert_error(response, 400, message)
    assert job_count(server) == jobs


@pytest.mark.parametrize(
    ("body", "prefix"),
    [
        pytest.param({"query": {"modelId": MODEL_ID, "fields": "orders.count"}},
                     "query.fields: Invalid input: expected array of strings, received ",
                     id="fields-string"),
        pytest.param({"query": orders_query(limit="x")},
                     "query.limit: expected a positive integer or null, received ", id="limit-x"),
        pytest.param({"query": orders_query(limit=True)},
                     "query.limit: expected a positive integer or null, received ",
                     id="limit-true"),
        pytest.param({"query": orders_query(limit=2.5)},
                     "query.limit: expected a positive integer or null, received ",
                     id="limit-float"),
        pytest.param({"query": {"modelId": 5}},
                     "query.modelId: Invalid input: expected string, received ",
                     id="model-id-number"),
        pytest.param({"query": orders_query(), "planOnly": "yes"},
                     "planOnly: Invalid input: expected boolean, received ", id="plan-only-str"),
        pytest.param({"query": orders_query(), "userId": 7},
                     "userId: Invalid input: expected string, received ", id="user-id-number"),
    ],
)  # fmt: skip
def test_mistyped_values_are_400_before_any_job(
    api: httpx.Client, server: Server, body: dict[str, Any], prefix: str
) -> None:
    """The exact wording of these is doubtful (see test_validation_messages_name_json_types)."""
    jobs = job_count(server)
    response = api.post(RUN, json=body)
    detail = assert_error(response, 400, response.json()["detail"])["detail"]
    assert detail.startswith(prefix)
    assert job_count(server) == jobs


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param({"modelId": 5},
                     "query.modelId: Invalid input: expected string, received number",
                     id="model-id-number"),
        pytest.param({"modelId": MODEL_ID, "fields": "orders.count"},
                     "query.fields: Invalid input: expected array of strings, received string",
                     id="fields-string"),
        pytest.param(orders_query(limit="x"),
                     "query.limit: expected a positive integer or null, received string",
                     id="limit-string"),
        pytest.param(orders_query(limit=True),
                     "query.limit: expected a positive integer or null, received boolean",
                     id="limit-boolean"),
    ],
)  # fmt: skip
def test_validation_messages_name_json_types(
    api: httpx.Client, query: dict[str, Any], message: str
) -> None:
    assert_error(api.post(RUN, json={"query": query}), 400, message)


def test_an_unknown_model_is_404(api: httpx.Client, server: Server) -> None:
    model = str(uuid.uuid4())
    jobs = job_count(server)
    response = api.post(RUN, json={"query": orders_query(modelId=model)})
    assert_error(response, 404, f"Model {model} not found")
    assert job_count(server) == jobs


# ---------------------------------------------------------------------- slow jobs and cancel


def test_slow_runs_answer_after_the_window_with_their_ids_remaining(api: httpx.Client) -> None:
    """Both modes at once (the session server's run window is 5 s): NDJSON ends in-band with
    the footer ``timed_out: "true"``; ``resultType`` is a 408 with a boolean ``timed_out``."""
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        streamed = pool.submit(api.post, RUN, json={"query": SLOW_QUERY})
        document = pool.submit(api.post, RUN, json={"query": SLOW_QUERY, "resultType": "csv"})
        stream, timed_out = streamed.result(), document.result()
    elapsed = time.monotonic() - started
    lines = ndjson(stream)
    body = timed_out.json()
    ids = [*lines[0].get("jobs_submitted", {}), *body.get("remaining_job_ids", [])]
    try:
        assert 4.5 <= elapsed < 15
        assert len(lines) == 2, lines  # header and footer: no job line
        header, footer = lines
        (job_id,) = header["jobs_submitted"]
        assert footer == {"remaining_job_ids": [job_id], "timed_out": "true"}
        assert timed_out.status_code == 408
        assert timed_out.headers["content-type"].startswith("application/json")
        assert body["detail"] == "Query timed out"
        assert body["timed_out"] is True
        assert len(body["remaining_job_ids"]) == 1
        assert set(body) >= ERROR_KEYS and body["status"] == 408
    finally:
        cancel(api, ids)
    assert len(ids) == 2
    *jobs, end = wait_lines(api, ids)
    assert end == {"remaining_job_ids": [], "timed_out": "false"}
    assert sorted(j["job_id"] for j in jobs) == sorted(ids)
    for job in jobs:
        assert (job["status"], job["error_type"]) == ("FAILED", "KILL")
        assert job["error_message"]
        assert "result" not in job


def test_a_waiting_run_returns_as_soon_as_its_job_is_cancelled(
    api: httpx.Client, server: Server
) -> None:
    """The run's wait is woken by the job ending, not by its 5 s window."""
    answer: dict[str, httpx.Response] = {}
    thread = threading.Thread(
        target=lambda: answer.setdefault("run", api.post(RUN, json={"query": SLOW_QUERY}))
    )
    started = time.monotonic()
    thread.start()
    ids: list[str] = []
    while not ids and time.monotonic() - started < 3:
        time.sleep(0.05)
        ids = open_job_ids(server)
    assert len(ids) == 1
    time.sleep(0.3)  # let the run settle into its wait
    cancel(api, ids)
    thread.join(10)
    elapsed = time.monotonic() - started
    assert elapsed < 3.5, elapsed  # well before the 5 s window
    job = single_job(ndjson(answer["run"]))
    assert (job["job_id"], job["status"], job["error_type"]) == (ids[0], "FAILED", "KILL")


def test_cancel_a_finished_job_leaves_it_as_it_was(api: httpx.Client) -> None:
    job = run_job(api, {"query": orders_query()})
    response = api.post("/api/v1/query/cancel", json={"job_ids": [job["job_id"]]})
    assert response.status_code == 200
    assert response.json() == {
        "jobs": [{"job_id": job["job_id"], "status": "COMPLETE", "error_type": None}]
    }
    again, _ = wait_lines(api, [job["job_id"]])
    assert again["status"] == "COMPLETE"


@pytest.mark.parametrize(
    "body",
    [{}, {"job_ids": []}, {"job_ids": ["not-a-uuid"]}, {"job_ids": "not-a-uuid"},
     {"job_ids": [1]}, {"job_ids": {"a": 1}}],
)  # fmt: skip
def test_cancel_validates_its_ids(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/api/v1/query/cancel", json=body)
    assert_error(response, 400, "job_ids must be a non-empty JSON array of UUIDs")


def test_cancel_of_unknown_jobs_is_404(api: httpx.Client) -> None:
    job_id = str(uuid.uuid4())
    response = api.post("/api/v1/query/cancel", json={"job_ids": [job_id]})
    assert_error(response, 404, f"Job with id {job_id} does not exist")
