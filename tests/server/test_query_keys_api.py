"""The remaining query keys through ``POST /api/v1/query/run``: transposed measures in the
Arrow result and the json document (``limit`` counting query rows, ``row_limit_reached``
when it cut them), and refusals as failed PLAN lines naming the key."""

from __future__ import annotations

from typing import Any

import httpx

from assay.engines import DuckDBEngine
from tests.engines.test_query_keys_rows import TRANSPOSED, TRANSPOSED_SQL
from tests.server.conftest import MODEL_ID
from tests.server.test_query_run import RUN, arrow, duck, rows, run_job


def body(query: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"query": {"modelId": MODEL_ID, **query}, **extra}


def test_transposed_rows_are_duckdbs_hand_written_union(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    job = run_job(api, body(TRANSPOSED))
    assert job["status"] == "COMPLETE", job
    table = arrow(job)
    assert table.column_names == ["orders.o_orderpriority", "measure_name", "measure_order",
                                  "measure_value", "orders.o_orderstatus"]  # fmt: skip
    assert rows(table) == duck(tpch_engine, TRANSPOSED_SQL.format(double="DOUBLE"))
    summary = job["summary"]
    assert summary["total_rows"] == 8  # 4 query rows x 2 measures: the limit counts query rows
    assert summary["row_limit_reached"] is True  # there are more than 4 (priority, status) rows
    assert "orders.count" not in summary["fields"]
    assert summary["fields"]["measure_value"]["data_type"] == "NUMBER"


def test_an_uncut_transposed_result_does_not_say_it_was_cut(api: httpx.Client) -> None:
    job = run_job(api, body({**TRANSPOSED, "limit": 15}))  # 5 priorities x 3 statuses
    assert job["summary"]["total_rows"] == 30
    assert not job["summary"].get("row_limit_reached")


def test_a_transposed_json_document_has_the_three_columns(api: httpx.Client) -> None:
    response = api.post(RUN, json=body(TRANSPOSED, resultType="json"))
    assert response.status_code == 200, response.text
    data = response.json()
    assert len(data) == 8
    assert [list(row.values())[1] for row in data[:2]] == ["orders.count",
                                                          "orders.sum_totalprice"]  # fmt: skip


def test_transposed_measures_true_is_refused_naming_the_key(api: httpx.Client) -> None:
    query = {**TRANSPOSED, "transposed_measures": True}
    job = run_job(api, body(query))
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert job["error_message"].startswith("query.transposed_measures: expected a list")
    response = api.post(RUN, json=body(query, resultType="json"))
    assert response.status_code == 400
    assert "query.transposed_measures: expected a list" in response.json()["detail"]


def test_another_control_type_is_a_failed_plan_line_naming_it(api: httpx.Client) -> None:
    query = {**TRANSPOSED, "controls": [{"type": "TOP_N", "id": "t"}]}
    job = run_job(api, body(query))
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert "controls of type 'TOP_N' are not supported" in job["error_message"]
