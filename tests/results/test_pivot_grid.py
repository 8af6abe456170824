"""The wide grid of a pivoted result (``resultType`` csv/json/xlsx), built from Omni's long
layout: two header rows, one line per pivot row, one column per (pivot value, measure)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa

from assay.results.pivot_grid import grid_csv, grid_json, is_pivoted, pivot_grid

FIELDS: dict[str, Any] = {
    "o.region": {"label": "Region", "is_dimension": True},
    "o.segment": {"label": "Segment", "is_dimension": True},
    "o.status": {"label": "Status", "is_dimension": True},
    "o.count": {"label": "Count", "is_dimension": False, "format": "number_0"},
    "o.total": {"label": "Total", "is_dimension": False},
}


def cells() -> pa.Table:
    """Two pivot rows; row 2 has no cell in column 1; column 2 is a NULL status."""
    return pa.table(
        {
            "o.region": ["ASIA", "ASIA", "EUROPE"],
            "o.status": ["F", None, None],
            "o.count": [1200, 3, 45],
            "o.total": [10.5, 0.25, 7.0],
            "$omni_pivot_row_num": [1, 1, 2],
            "$omni_pivot_col_num": [1, 2, 2],
        }
    )


def test_two_measures_per_pivot_value_under_two_header_rows() -> None:
    grid = pivot_grid(cells(), ["o.status"], FIELDS)
    assert grid.top == ["Status", "F", "F (2)", "null", "null (2)"]
    assert grid.labels == ["Region", "Count", "Total", "Count", "Total"]
    rows = json.loads(grid_json(grid))
    assert rows == [
        dict(zip(grid.top, grid.labels, strict=True)),
        {"Status": "ASIA", "F": 1200, "F (2)": 10.5, "null": 3, "null (2)": 0.25},
        {"Status": "EUROPE", "F": None, "F (2)": None, "null": 45, "null (2)": 7.0},
    ]


def test_csv_has_both_header_lines_and_empty_missing_cells() -> None:
    text = grid_csv(pivot_grid(cells(), ["o.status"], FIELDS)).decode()
    assert list(csv.reader(io.StringIO(text))) == [
        ["Status", "F", "F (2)", "null", "null (2)"],
        ["Region", "Count", "Total", "Count", "Total"],
        ["ASIA", "1200", "10.5", "3", "0.25"],
        ["EUROPE", "", "", "45", "7"],
    ]


def test_formatted_cells_keep_the_numbering_numeric() -> None:
    rows = json.loads(grid_json(pivot_grid(cells(), ["o.status"], FIELDS, formatted=True)))
    assert rows[1]["F"] == "1,200"  # number_0
    assert [r["Status"] for r in rows[1:]] == ["ASIA", "EUROPE"]


def test_several_row_dimensions_and_pivot_fields() -> None:
    table = pa.table(
        {
            "o.region": ["ASIA", "ASIA"],
            "o.segment": ["AUTO", "AUTO"],
            "o.status": ["F", "O"],
            "o.count": [1, 2],
            "$omni_pivot_row_num": [1, 1],
            "$omni_pivot_col_num": [1, 2],
        }
    )
    grid = pivot_grid(table, ["o.segment", "o.status"], FIELDS)
    assert grid.top == ["Segment / Status", "AUTO / F", "AUTO / O"]
    assert grid.labels == ["Region", "Count", "Count"]
    table = table.set_column(1, "o.segment", pa.array(["BUILDING", "BUILDING"]))
    grid = pivot_grid(table, ["o.status"], FIELDS)
    assert grid.top == ["Region", "Status", "F", "O"]  # the last row dimension holds the pivot
    assert grid.labels == ["Region", "Segment", "Count", "Count"]


def test_only_pivot_fields_and_measures_is_one_line() -> None:
    table = pa.table(
        {
            "o.status": ["F", "O"],
            "o.count": [1, 2],
            "$omni_pivot_row_num": [1, 1],
            "$omni_pivot_col_num": [1, 2],
        }
    )
    grid = pivot_grid(table, ["o.status"], FIELDS)
    assert json.loads(grid_json(grid)) == [{"F": "Count", "O": "Count"}, {"F": 1, "O": 2}]


def test_is_pivoted_needs_both_numbering_columns() -> None:
    assert is_pivoted(cells())
    assert not is_pivoted(cells().drop_columns(["$omni_pivot_col_num"]))


def test_row_totals_are_a_last_column_per_totalled_measure() -> None:
    table = cells().append_column(
        "$omni_row_total_indicator", pa.array([None, None, None], pa.string())
    )
    totals = pa.table(
        {
            "o.region": ["ASIA", "EUROPE"],
            "o.status": pa.array([None, None], pa.string()),
            "o.count": pa.array([None, None], pa.int64()),
            "o.total": [10.6, 7.0],
            "$omni_pivot_row_num": [1, 2],
            "$omni_pivot_col_num": pa.array([None, None], pa.int64()),
            "$omni_row_total_indicator": ["row_total", "row_total"],
        }
    )
    both = pa.concat_tables([table, totals.cast(table.schema)])
    grid = pivot_grid(both, ["o.status"], FIELDS, row_totals=["o.total"])
    assert grid.top == ["Status", "F", "F (2)", "null", "null (2)", "Row Total"]
    assert grid.labels[-1] == "Total"
    rows = json.loads(grid_json(grid))
    assert [r["Row Total"] for r in rows[1:]] == [10.6, 7.0]
    assert [r["null"] for r in rows[1:]] == [3, 45]  # the totals' NULL status is no column
