"""The layout of a raw SQL totals row (``jobs.raw_sql_totals``) and how people read it
(``results.row_kinds.with_sidecars_merged``), on Arrow schemas and tables alone."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from assay.errors import InvalidQuery
from assay.jobs.raw_sql_totals import sidecars
from assay.results.row_kinds import with_sidecars_merged, without_helpers

SCHEMA = pa.schema([("name", pa.string()), ("A", pa.int32()), ("a", pa.float64()),
                    ("n", pa.decimal128(15, 2))])  # fmt: skip


def test_sidecars_follow_their_columns_lower_cased_and_numbered_on_repeats() -> None:
    layout = sidecars(SCHEMA, ["a", "n", "A"])  # request order does not matter: result order
    schema = layout.schema([pa.int32(), pa.float64(), pa.decimal128(15, 2)])
    assert schema.names == ["name", "A", "a__omni_summ", "a", "a__omni_summ_1", "n",
                            "n__omni_summ", "$omni_column_total_indicator"]  # fmt: skip
    assert schema.field("a__omni_summ").type == pa.int32()


@pytest.mark.parametrize(
    ("schema", "keys", "message"),
    [
        (SCHEMA, ["N"], "'N' is not a column of the SQL's result (its columns: 'name', 'A', "),
        (SCHEMA, ["name"], "'name' is string; only numeric columns can be totaled"),
        (pa.schema([("x", pa.int64()), ("x", pa.int64())]), ["x"], "has 2 columns named 'x'"),
        (pa.schema([("x", pa.int64()), ("y__omni_summ", pa.int64())]), ["x"], "reserved"),
        (pa.schema([("x", pa.int64()), ("$omni_id", pa.int64())]), ["x"], "reserved"),
    ],
)
def test_what_cannot_be_laid_out_is_refused_by_name(
    schema: pa.Schema, keys: list[str], message: str
) -> None:
    with pytest.raises(InvalidQuery, match=re.escape(message)):
        sidecars(schema, keys)


def test_people_read_each_total_under_its_column() -> None:
    table = pa.table({
        "name": pa.array(["x", "y", None]),
        "n": pa.array([1, 2, None], pa.int32()),
        "n__omni_summ": pa.array([None, None, Decimal(6_000_000_000)], pa.decimal128(38, 0)),
        "own__omni_summ": pa.array([7, 8, None]),  # the SQL's own column (in summary.fields)
        "$omni_column_total_indicator": pa.array([None, None, "column_total"]),
    })  # fmt: skip
    fields: dict[str, dict[str, Any]] = {"name": {}, "n": {}, "own__omni_summ": {}}
    shown = without_helpers(with_sidecars_merged(table, fields))
    assert shown.column_names == ["name", "n", "own__omni_summ"]
    assert shown.column("n").to_pylist() == [1, 2, 6_000_000_000]  # widened to hold the sum
    assert shown.column("own__omni_summ").to_pylist() == [7, 8, None]


def test_the_terminal_table_labels_the_first_empty_cell_of_a_raw_sql_total() -> None:
    from assay.cli.result_rows import readable

    table = pa.table({
        "n": pa.array([1, 2, None]),
        "n__omni_summ": pa.array([None, None, 3]),
        "name": pa.array(["x", "y", None]),
        "$omni_column_total_indicator": pa.array([None, None, "column_total"]),
    })  # fmt: skip
    fields = {"n": {"is_dimension": True}, "name": {"is_dimension": True}}
    shown = readable(table, fields, label=True)
    assert shown.totals == (2,)
    assert shown.table.to_pylist()[-1] == {"n": "3", "name": "Total"}  # the total kept
