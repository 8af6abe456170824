"""``assay query`` and ``assay compile`` on totals, pivots with calculations and filled
pivots: no ``$omni_`` helper column reaches a person, totals rows say what they are, and the
SQL of each combination prints."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
from typer.testing import CliRunner

from assay.cli.app import app
from assay.cli.main import main  # noqa: F401 (registers the commands)
from assay.cli.result_rows import readable

runner = CliRunner()
S, P, N = "orders.o_orderstatus", "orders.o_orderpriority", "orders.count"
TOTALS = {
    "join_paths_from_topic_name": "orders",
    "fields": [S, P, N],
    "column_totals": {"::total::": {"type": "aggregation"}, S: {"type": "aggregation"}},
    "sorts": [{"column_name": S}, {"column_name": P}],
    "limit": 2,
}
PCT = {
    "calc_name": "pct",
    "label": "Share",
    "sql_expression": {"type": "call", "operator": "Omni.OMNI_PERCENT_OF_TOTAL",
                       "operands": [{"type": "field", "field_name": N}]},
}  # fmt: skip
PIVOT_CALC = {
    "join_paths_from_topic_name": "orders",
    "fields": ["orders.o_orderdate[year]", S, N, "pct"],
    "pivots": [S],
    "calculations": [PCT],
    "sorts": [{"column_name": "orders.o_orderdate[year]"}],
}


def run(tpch_path: Path, query: dict[str, Any], *fmt: str) -> str:
    args = ["query", json.dumps(query), "--local", "--database", str(tpch_path), *fmt]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_terminal_table_labels_totals_rows_and_hides_helpers(tpch_path: Path) -> None:
    text = run(tpch_path, TOTALS)
    assert "$omni_" not in text
    lines = [line for line in text.splitlines() if "│" in line]
    # limit 2 counts each kind of row: two detail rows, two subtotals, the grand total
    subtotals = [line for line in lines if "Subtotal" in line]
    assert len(subtotals) == 2 and all(s.split("│")[2].strip() == "Subtotal" for s in subtotals)
    assert lines[-1].split("│")[1].strip() == "Total" and "150000" in lines[-1]


def test_csv_and_json_keep_totals_rows_without_helpers(tpch_path: Path) -> None:
    rows = list(csv.reader(io.StringIO(run(tpch_path, TOTALS, "--format", "csv"))))
    assert rows[0] == [S, P, N]
    assert rows[-1] == ["", "", "150000"]  # the grand total: rolled-up cells empty
    records = json.loads(run(tpch_path, TOTALS, "--format", "json"))
    assert all(not k.startswith("$omni_") for r in records for k in r)
    assert len(records) == 2 + 2 + 1


def test_a_pivot_with_a_calculation_prints_as_the_grid(tpch_path: Path) -> None:
    text = run(tpch_path, PIVOT_CALC)
    assert "$omni_" not in text and "Share" in text
    grid = json.loads(run(tpch_path, PIVOT_CALC, "--format", "json"))
    assert grid[0]["O (2)"] == "Share"
    assert abs(sum(r["O (2)"] or 0 for r in grid[1:]) - 1) < 1e-9


def test_compile_prints_the_sql_of_each_combination() -> None:
    filled = {
        "join_paths_from_topic_name": "orders",
        "fields": [P, "orders.o_orderdate[month_num]", N],
        "pivots": ["orders.o_orderdate[month_num]"],
        "fill_fields": ["orders.o_orderdate[month_num]"],
    }
    for query, marks in [
        (TOTALS, ["GROUPING SETS", "$omni_column_total_indicator"]),
        (PIVOT_CALC, ["DENSE_RANK", 'PARTITION BY q."$omni_pivot_col_num"']),
        (filled, ["$omni_fill_frame", "DENSE_RANK"]),
    ]:
        result = runner.invoke(app, ["compile", json.dumps(query)])
        assert result.exit_code == 0, result.output
        assert all(m in result.output for m in marks), (marks, result.output)
    result = runner.invoke(app, ["compile", json.dumps({**TOTALS, "pivots": [S]}),
                                 "--dialect", "postgres"])  # fmt: skip
    assert result.exit_code == 1 and "query.column_totals with query.pivots" in result.output


def test_a_subtotal_label_goes_after_the_dimension_it_totals() -> None:
    table = pa.table({
        "a": ["x", "x", None], "b": ["p", None, None], "c": [1, None, None], "n": [1, 2, 3],
        "$omni_column_total_indicator": [None, "column_subtotal::a", "column_total"],
    })  # fmt: skip
    fields = {k: {"is_dimension": k != "n"} for k in "abcn"}
    shown = readable(table, fields, label=True)
    assert shown.table.column_names == ["a", "b", "c", "n"]
    assert shown.totals == (1, 2)
    assert shown.table.to_pylist()[1:] == [
        {"a": "x", "b": "Subtotal", "c": None, "n": 2},
        {"a": "Total", "b": None, "c": None, "n": 3},
    ]
