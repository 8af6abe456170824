"""Table calculations through ``POST /api/v1/query/run`` on a real server: the result's
columns, ``summary.fields[calc].is_calc``, ``summary.invalid_calculations``, CALCS_FAILED and
``swallow_errors``, and a limit that cuts rows (calculations see only the rows shown)."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from assay.engines import DuckDBEngine
from tests.server.conftest import Server
from tests.server.test_omni_clients import run_sdk
from tests.server.test_query_run import RUN, arrow, duck, orders_query, rows, run_job

pytestmark = pytest.mark.tpch

N = "orders.count"
PCT = {
    "calc_name": "pct",
    "label": "Share of orders",
    "format": "PERCENT_1",
    "sql_expression": {
        "type": "call",
        "operator": "Omni.OMNI_PERCENT_OF_TOTAL",
        "operands": [{"type": "field", "field_name": N, "for_calc": True}],
    },
}
LOOKUP = {
    "calc_name": "look",
    "sql_expression": {
        "type": "call",
        "operator": "Omni.OMNI_FX_VLOOKUP",
        "operands": [{"type": "field", "field_name": N}],
    },
}


def calc_query(*calcs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    names = [c["calc_name"] for c in calcs]
    return orders_query(
        fields=["orders.o_orderpriority", N, *names], calculations=list(calcs), **extra
    )


def test_percent_of_total_with_a_limit_that_cuts_rows_sums_to_one(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    job = run_job(api, {"query": calc_query(PCT, limit=3)})
    assert job["status"] == "COMPLETE", job
    summary = job["summary"]
    assert summary["row_limit_reached"] is True
    assert summary["invalid_calculations"] == {}
    meta = summary["fields"]["pct"]
    assert meta["is_calc"] is True
    assert (meta["field_name"], meta["label"], meta["format"]) == (
        "pct",
        "Share of orders",
        "PERCENT_1",
    )
    assert summary["fields"][N]["is_calc"] is False
    table = arrow(job)
    assert table.column_names == ["orders.o_orderpriority", N, "pct"]
    got = rows(table)
    want = duck(
        tpch_engine,
        """WITH b AS (SELECT o_orderpriority AS p, count(*) AS n FROM orders GROUP BY 1
                      ORDER BY 1 LIMIT 3)
           SELECT p, n, n / (SELECT sum(n) FROM b) FROM b ORDER BY p""",
    )
    assert [r[:2] for r in got] == [r[:2] for r in want]
    assert all(math.isclose(g[2], w[2]) for g, w in zip(got, want, strict=True))
    assert math.isclose(sum(r[2] for r in got), 1.0)


def test_an_unsupported_operator_fails_the_job_as_calcs_failed(api: httpx.Client) -> None:
    job = run_job(api, {"query": calc_query(PCT, LOOKUP)})
    assert (job["status"], job["error_type"]) == ("FAILED", "CALCS_FAILED")
    assert "'look' Unsupported operator Omni.OMNI_FX_VLOOKUP" in job["error_message"]
    assert job["summary"]["invalid_calculations"] == {
        "look": "Unsupported operator Omni.OMNI_FX_VLOOKUP: not supported yet"
    }
    assert "result" not in job


def test_swallow_errors_shows_error_cells_and_completes(api: httpx.Client) -> None:
    job = run_job(api, {"query": calc_query(PCT, {**LOOKUP, "swallow_errors": True})})
    assert job["status"] == "COMPLETE", job
    assert job["summary"]["invalid_calculations"] == {
        "look": "Unsupported operator Omni.OMNI_FX_VLOOKUP: not supported yet"
    }
    table = arrow(job)
    assert table.column("look").to_pylist() == ["#ERROR!"] * 5
    assert math.isclose(sum(table.column("pct").to_pylist()), 1.0)


def test_a_formula_without_its_tree_is_a_failed_plan_naming_sql_expression(
    api: httpx.Client,
) -> None:
    formula = {"calc_name": "pct", "original_formula": "=B1/SUM(B:B)"}
    job = run_job(api, {"query": calc_query(formula)})
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert "sql_expression is required" in job["error_message"]


def test_result_type_json_keys_a_calculation_by_its_label(api: httpx.Client) -> None:
    response = api.post(RUN, json={"query": calc_query(PCT), "resultType": "json"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body) == 5
    assert math.isclose(sum(r["Share of orders"] for r in body), 1.0)


def test_calcs_failed_with_result_type_is_an_error_naming_the_calculation(
    api: httpx.Client,
) -> None:
    response = api.post(RUN, json={"query": calc_query(LOOKUP), "resultType": "csv"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_type"] == "CALCS_FAILED"
    assert "'look'" in body["detail"]


def test_the_official_sdk_reads_a_calculation(server: Server, org_key: str) -> None:
    """omni-python-sdk's run_query_blocking: the calc column and its summary field."""
    table, fields = run_sdk(server, org_key, calc_query(PCT))
    assert table.column_names == ["orders.o_orderpriority", N, "pct"]
    assert math.isclose(sum(table.column("pct").to_pylist()), 1.0)
    assert fields["pct"]["is_calc"] is True
