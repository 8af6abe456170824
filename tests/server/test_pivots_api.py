"""Pivoted queries through ``POST /api/v1/query/run``: Omni's long Arrow layout with its two
numbering columns, the wide grid for ``resultType`` json/csv/xlsx, ``row_limit_reached``
counted in pivot rows, and the 400 for an unlimited pivoted query (spec section 2)."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import httpx

from assay.engines import DuckDBEngine
from tests.server.conftest import MODEL_ID
from tests.server.test_query_run import RUN, arrow, assert_error, duck, rows, run_job

FIELDS = ["orders.o_orderdate[year]", "orders.o_orderstatus", "orders.count"]
#: years by status: 1992-1994 F, 1995 F O P, 1996-1998 O (TPC-H)
BY_YEAR_SQL = (
    "SELECT EXTRACT(YEAR FROM o_orderdate) AS y, o_orderstatus, COUNT(*) FROM orders "
    "GROUP BY 1, 2 ORDER BY 1, 2"
)
STATUS_COLUMN = {"F": 1, "O": 2, "P": 3}


def pivot_query(**extra: Any) -> dict[str, Any]:
    return {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders", "fields": FIELDS,
            "pivots": ["orders.o_orderstatus"],
            "sorts": [{"column_name": "orders.o_orderdate[year]"}], **extra}  # fmt: skip


def by_year(engine: DuckDBEngine) -> list[tuple[int, str, int]]:
    return [(int(y), s, n) for y, s, n in duck(engine, BY_YEAR_SQL)]


def test_arrow_is_the_long_layout_with_the_numbering_columns(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    job = run_job(api, {"query": pivot_query(limit=1000)})
    assert job["status"] == "COMPLETE", job
    table = arrow(job)
    assert table.column_names == [*FIELDS, "$omni_pivot_row_num", "$omni_pivot_col_num"]
    years = sorted({y for y, _, _ in by_year(tpch_engine)})
    want = [(y, s, n, years.index(y) + 1, STATUS_COLUMN[s]) for y, s, n in by_year(tpch_engine)]
    assert [(d.year, s, n, r, c) for d, s, n, r, c in rows(table)] == want
    assert list(job["summary"]["fields"]) == FIELDS  # no $omni_ columns
    assert "row_limit_reached" not in job["summary"]
    assert "DENSE_RANK" in job["summary"]["sql"]


def test_limit_counts_pivot_rows_and_says_when_it_cut(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    job = run_job(api, {"query": pivot_query(limit=4)})
    table = arrow(job)
    shown = [(y, s, n) for y, s, n in by_year(tpch_engine) if y <= 1995]  # four years
    assert [(d.year, s, n) for d, s, n, _, _ in rows(table)] == shown
    assert len(shown) > 4  # 1995 is one pivot row of three cells
    assert job["summary"]["total_rows"] == len(shown)
    assert job["summary"]["row_limit_reached"] is True
    whole = run_job(api, {"query": pivot_query(limit=7)})  # every year
    assert "row_limit_reached" not in whole["summary"]


def test_column_limit_keeps_each_rows_first_cell(api: httpx.Client) -> None:
    table = arrow(run_job(api, {"query": pivot_query(column_limit=1, offset=3, limit=10)}))
    got = [(d.year, s, r, c) for d, s, _, r, c in rows(table)]
    # 1995 keeps only F; 1996-1998 have only O (column 2), kept as their first cell
    assert got == [(1995, "F", 1, 1), (1996, "O", 2, 2), (1997, "O", 3, 2), (1998, "O", 4, 2)]


def test_json_is_the_wide_grid_with_the_labels_as_first_row(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    response = api.post(RUN, json={"query": pivot_query(limit=None), "resultType": "json"})
    assert response.status_code == 200, response.text
    header, *data = response.json()
    assert header == {"Order Status": "Order Date Year", "F": "Order Count",
                      "O": "Order Count", "P": "Order Count"}  # fmt: skip
    cells = {(y, s): n for y, s, n in by_year(tpch_engine)}
    want = [
        {"Order Status": str(y), **{s: cells.get((y, s)) for s in ("F", "O", "P")}}
        for y in sorted({y for y, _ in cells})
    ]
    assert data == want


def test_several_measures_repeat_the_pivot_value_made_unique(api: httpx.Client) -> None:
    fields = [*FIELDS, "orders.sum_totalprice"]
    body = {"query": pivot_query(fields=fields, limit=2), "resultType": "json"}
    header = api.post(RUN, json=body).json()[0]
    assert list(header) == ["Order Status", "F", "F (2)"]  # 1992 and 1993: F only
    assert list(header.values()) == ["Order Date Year", "Order Count", "Total Order Value"]


def test_csv_is_the_grid_under_two_header_lines(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    response = api.post(RUN, json={"query": pivot_query(limit=1000), "resultType": "csv"})
    assert response.status_code == 200, response.text
    top, labels, *data = list(csv.reader(io.StringIO(response.text)))
    assert top == ["Order Status", "F", "O", "P"]
    assert labels == ["Order Date Year", "Order Count", "Order Count", "Order Count"]
    cells = {(y, s): n for y, s, n in by_year(tpch_engine)}
    assert data[3] == ["1995", *(str(cells[(1995, s)]) for s in ("F", "O", "P"))]
    assert data[0] == ["1992", str(cells[(1992, "F")]), "", ""]


def test_formatted_results_format_the_cells_not_the_numbering(api: httpx.Client) -> None:
    body = {"query": pivot_query(limit=1000), "resultType": "json", "formatResults": True}
    data = api.post(RUN, json=body).json()
    assert len(data) == 8  # the label row and seven years: numbering read as numbers
    assert all("," in row["F"] for row in data[1:5])  # number_0: 22,759


def test_xlsx_is_a_workbook_with_both_header_rows(api: httpx.Client) -> None:
    response = api.post(RUN, json={"query": pivot_query(limit=1000), "resultType": "xlsx"})
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as book:
        strings = book.read("xl/sharedStrings.xml").decode()
    assert "Order Date Year" in strings and "Order Status" in strings


def test_unlimited_pivoted_query_is_400_unless_a_document_is_asked(api: httpx.Client) -> None:
    response = api.post(RUN, json={"query": pivot_query(limit=None)})
    assert_error(response, 400, "Unlimited limit (null) cannot be used with pivoted queries")
    unpivoted = api.post(RUN, json={"query": pivot_query(limit=None, pivots=[])})
    assert unpivoted.status_code == 200


def test_bad_pivots_are_failed_plan_lines_naming_them(api: httpx.Client) -> None:
    job = run_job(api, {"query": pivot_query(pivots=[{"field": "orders.o_orderstatus"}])})
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert "query.pivots[0]: expected a field name" in job["error_message"]


def test_row_totals_are_flagged_cells_and_a_grid_column(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    fields = [*FIELDS, "orders.count_customers"]
    totals = {"orders.count_customers": {"type": "aggregation"}}
    query = pivot_query(fields=fields, row_totals=totals, limit=1000)
    table = arrow(run_job(api, {"query": query}))
    assert table.column_names[-1] == "$omni_row_total_indicator"
    flagged = [r for r in table.to_pylist() if r["$omni_row_total_indicator"] == "row_total"]
    want = duck(tpch_engine, "SELECT EXTRACT(YEAR FROM o_orderdate), COUNT(DISTINCT o_custkey) "
                "FROM orders GROUP BY 1 ORDER BY 1")  # fmt: skip
    assert [(r["orders.o_orderdate[year]"].year, r["orders.count_customers"]) for r in flagged] == [
        (int(y), n) for y, n in want
    ]
    assert all(r["orders.count"] is None and r["$omni_pivot_col_num"] is None for r in flagged)
    grid = api.post(RUN, json={"query": query, "resultType": "json"}).json()
    assert list(grid[0])[-1] == "Row Total" and grid[0]["Row Total"] == "Ordering Customers"
    assert [row["Row Total"] for row in grid[1:]] == [n for _, n in want]


def _calcs(*calcs: dict[str, Any]) -> dict[str, Any]:
    names = [c["calc_name"] for c in calcs]
    return {"fields": [*FIELDS, *names], "calculations": list(calcs)}


_COUNT = {"type": "field", "field_name": "orders.count"}
PCT = {"calc_name": "pct", "label": "Share",
       "sql_expression": {"type": "call", "operator": "Omni.OMNI_PERCENT_OF_TOTAL",
                          "operands": [_COUNT]}}  # fmt: skip
ROW_SHARE = {**PCT, "calc_name": "row_share", "outside_pivot": True, "label": "Row share"}


def test_calculations_over_pivots_see_each_column_and_only_the_rows_shown(
    api: httpx.Client, tpch_engine: DuckDBEngine
) -> None:
    """Four pivot rows of seven: the job fetches a fifth to tell it cut, and percent of total
    is per pivot column over the four shown; outside_pivot shares are per row."""
    job = run_job(api, {"query": pivot_query(limit=4, **_calcs(PCT, ROW_SHARE))})
    assert job["status"] == "COMPLETE", job
    table = arrow(job)
    assert table.column_names == [*FIELDS, "pct", "row_share", "$omni_pivot_row_num",
                                  "$omni_pivot_col_num"]  # fmt: skip
    shown = [(y, s, n) for y, s, n in by_year(tpch_engine) if y <= 1995]
    got = rows(table)
    assert [(d.year, s, n) for d, s, n, *_ in got] == shown
    assert job["summary"]["row_limit_reached"] is True
    column_sums = {s: sum(n for y, s2, n in shown if s2 == s) for _, s, _ in shown}
    row_sums = {y: sum(n for y2, _, n in shown if y2 == y) for y, _, _ in shown}
    for d, s, n, pct, share, _, _ in got:
        assert abs(pct - n / column_sums[s]) < 1e-12
        assert abs(share - n / row_sums[d.year]) < 1e-12
    fields = job["summary"]["fields"]
    assert fields["pct"]["is_calc"] is True and "$omni_pivot_row_num" not in fields
    assert job["summary"]["invalid_calculations"] == {}


def test_calculations_over_pivots_in_the_grid(api: httpx.Client) -> None:
    """A calculation is a cell of each pivot column in the wide grid, as a measure is."""
    body = {"query": pivot_query(limit=10, **_calcs(PCT)), "resultType": "json"}
    response = api.post(RUN, json=body)
    assert response.status_code == 200, response.text
    header, *data = response.json()
    assert header == {"Order Status": "Order Date Year", "F": "Order Count", "F (2)": "Share",
                      "O": "Order Count", "O (2)": "Share", "P": "Order Count",
                      "P (2)": "Share"}  # fmt: skip
    assert abs(sum(r["O (2)"] or 0 for r in data) - 1) < 1e-12
