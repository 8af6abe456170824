"""Column totals through ``/query/run`` on a real server: the Arrow result carries the totals
rows and the ``$omni_`` helper columns, ``summary.fields`` does not list the helpers, and the
limit (with ``row_limit_reached``) counts detail rows apart from totals rows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from assay.engines import DuckDBEngine
from tests.server.test_query_run import PRIORITY_SQL, RUN, arrow, duck, orders_query, rows, run_job

pytestmark = pytest.mark.tpch
TOTAL = {"::total::": {"type": "aggregation"}}
HELPERS = ["$omni_group_grouping", "$omni_column_total_indicator", "$omni_total_sort"]


def totals_job(api: httpx.Client, **extra: Any) -> dict[str, Any]:
    job = run_job(api, {"query": orders_query(column_totals=TOTAL, **extra)})
    assert job["status"] == "COMPLETE", job
    return job


def test_the_grand_total_row_follows_the_detail_rows(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    job = totals_job(api, limit=5)  # exactly the five priorities
    table = arrow(job)
    assert table.column_names == ["orders.o_orderpriority", "orders.count", *HELPERS]
    got = rows(table.select(["orders.o_orderpriority", "orders.count",
                             "$omni_column_total_indicator"]))  # fmt: skip
    want = [(*r, None) for r in duck(tpch_engine, PRIORITY_SQL)]
    assert got == [*want, (None, 150000, "column_total")]
    summary = job["summary"]
    assert list(summary["fields"]) == ["orders.o_orderpriority", "orders.count"]
    assert "row_limit_reached" not in summary
    assert summary["total_rows"] == 6


def test_the_limit_cuts_detail_rows_and_keeps_the_total(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    job = totals_job(api, limit=2)
    got = rows(arrow(job).select(["orders.o_orderpriority", "orders.count"]))
    assert got == [*duck(tpch_engine, PRIORITY_SQL + " LIMIT 2"), (None, 150000)]
    assert job["summary"]["row_limit_reached"] is True
    assert job["summary"]["total_rows"] == 3


def test_a_key_that_is_not_a_field_fails_the_plan_naming_it(api: httpx.Client) -> None:
    job = run_job(
        api, {"query": orders_query(column_totals={"orders.cont": {"type": "aggregation"}})}
    )
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert "'orders.cont' is neither '::total::' nor a field" in job["error_message"]
    assert 'Did you mean "orders.count"?' in job["error_message"]


def test_a_rendered_result_has_the_totals_row_and_no_helper_columns(api: httpx.Client) -> None:
    body = {"query": orders_query(column_totals=TOTAL), "resultType": "json"}
    response = api.post(RUN, json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    assert got[-1] == {"Order Priority": None, "Order Count": 150000}
    assert len(got) == 6 and all(set(r) == {"Order Priority", "Order Count"} for r in got)
