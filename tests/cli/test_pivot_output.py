"""``assay query`` shows a pivoted result as the wide grid (two header rows), in the terminal
table, CSV and JSON; ``--format arrow`` keeps Omni's long numbered cells."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
from typer.testing import CliRunner

from assay.cli.app import app
from assay.cli.main import main  # noqa: F401 (registers the commands)

runner = CliRunner()
QUERY = json.dumps(
    {
        "join_paths_from_topic_name": "orders",
        "fields": ["orders.o_orderdate[year]", "orders.o_orderstatus", "orders.count"],
        "pivots": ["orders.o_orderstatus"],
        "sorts": [{"column_name": "orders.o_orderdate[year]"}],
    }
)


def run(tpch_path: Path, *fmt: str) -> bytes:
    args = ["query", QUERY, "--local", "--database", str(tpch_path), *fmt]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def test_the_terminal_table_is_the_grid(tpch_path: Path) -> None:
    text = run(tpch_path).decode()
    lines = text.splitlines()
    assert "Order Status" in lines[1] and "P" in lines[1]
    assert "Order Date Year" in lines[2] and "Order Count" in lines[2]
    assert sum(1 for line in lines if "199" in line) == 7  # one line per year
    assert "$omni_pivot" not in text


def test_csv_and_json_are_the_grid(tpch_path: Path) -> None:
    top, labels, *data = list(csv.reader(io.StringIO(run(tpch_path, "--format", "csv").decode())))
    assert top == ["Order Status", "F", "O", "P"]
    assert labels[0] == "Order Date Year" and len(data) == 7
    assert [row[0] for row in data] == [str(y) for y in range(1992, 1999)]
    rows = json.loads(run(tpch_path, "--format", "json"))
    assert rows[0] == {"Order Status": "Order Date Year", "F": "Order Count",
                       "O": "Order Count", "P": "Order Count"}  # fmt: skip
    assert rows[1:] == [
        {"Order Status": r[0], "F": _int(r[1]), "O": _int(r[2]), "P": _int(r[3])} for r in data
    ]


def test_arrow_keeps_the_long_layout(tpch_path: Path) -> None:
    table = pa.ipc.open_stream(run(tpch_path, "--format", "arrow")).read_all()
    assert table.column_names[-2:] == ["$omni_pivot_row_num", "$omni_pivot_col_num"]
    assert table.num_rows == 9  # 1995 has three cells


def _int(text: str) -> int | None:
    return int(text) if text else None
