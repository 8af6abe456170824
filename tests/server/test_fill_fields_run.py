"""``fill_fields`` through ``POST /api/v1/query/run``: filled rows in the Arrow result and the
rendered documents, the limit counted on filled rows, the summary's warning when a date
series has no bounds, and bad names as failed PLAN lines."""

from __future__ import annotations

from typing import Any

import httpx

from assay.engines import DuckDBEngine
from tests.engines.test_fill_fields_rows import DAILY, DAILY_SQL, MONTHLY
from tests.server.conftest import MODEL_ID
from tests.server.test_query_run import RUN, arrow, duck, rows, run_job


def body(query: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"query": {"modelId": MODEL_ID, **query}, **extra}


def test_filled_rows_are_duckdbs_hand_written_fill(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    job = run_job(api, body(DAILY))
    assert job["status"] == "COMPLETE", job
    got = rows(arrow(job))
    want = duck(tpch_engine, DAILY_SQL["duckdb"])
    assert len(got) == len(want) == 75  # 15 days x 5 priorities, 25 of them in the data
    assert [(r[0], r[1], r[2]) for r in got] == want
    assert sum(r[2] is None for r in got) == 50
    assert "stage_summaries" not in job["summary"]
    assert "$omni_fill_frame" in job["summary"]["sql"]


def test_the_limit_counts_filled_rows_and_says_it_cut(api: httpx.Client) -> None:
    job = run_job(api, body({**DAILY, "limit": 60}))
    assert job["summary"]["total_rows"] == 60
    assert job["summary"]["row_limit_reached"] is True


def test_json_documents_show_filled_buckets_as_text(api: httpx.Client) -> None:
    response = api.post(RUN, json=body(MONTHLY, resultType="json"))
    assert response.status_code == 200, response.text
    data = response.json()
    months = [next(iter(row.values())) for row in data]
    assert months[:3] == ["1993-01", "1993-02", "1993-03"] and len(months) == 24
    assert list(data[1].values())[1] is None  # February 1993 had no such order: filled


def test_an_unbounded_date_series_is_not_filled_and_the_summary_says_so(
    api: httpx.Client,
) -> None:
    query = {**MONTHLY, "filters": {}, "limit": 5000}
    job = run_job(api, body(query))
    assert job["status"] == "COMPLETE"
    (stage,) = job["summary"]["stage_summaries"]
    assert stage["succeeded"] is True
    (warning,) = stage["warnings"]
    assert "'orders.o_orderdate[month]' was not filled" in warning
    assert job["summary"]["total_rows"] == 80  # the months that have orders, no more


def test_a_fill_field_not_in_fields_is_a_failed_plan_line_naming_it(api: httpx.Client) -> None:
    query = {**DAILY, "fill_fields": ["orders.o_orderdate[day]"]}
    job = run_job(api, body(query))
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert "'orders.o_orderdate[day]' is not in query.fields" in job["error_message"]
    assert 'Did you mean "orders.o_orderdate[date]"' in job["error_message"]


def test_a_free_text_fill_is_refused_by_name(api: httpx.Client) -> None:
    query = {"join_paths_from_topic_name": "orders", "fields": ["orders.o_clerk", "orders.count"],
             "fill_fields": ["orders.o_clerk"]}  # fmt: skip
    job = run_job(api, body(query))
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert "'orders.o_clerk' cannot be filled" in job["error_message"]
