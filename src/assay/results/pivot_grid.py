"""A pivoted result as people read it: the wide grid of ``resultType`` csv/json/xlsx.

The Arrow result is long (one row per cell, numbered by ``$omni_pivot_row_num`` and
``$omni_pivot_col_num``); documents show Omni's table instead (spec 2.3b): one line per
pivot row, one column per (pivot value, measure) and one per row-totalled measure, under two
header rows. The top one holds
the pivot fields' label over the row dimensions and each column's pivot value; the second
the field labels. JSON rows are keyed by the top header (made unique), and the first JSON
row is the second header row, as Omni's. Results layer: pyarrow only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import xlsxwriter

from assay.results.arrow import to_json_rows, unique_labels
from assay.results.formats import formatted_table

ROW_NUM = "$omni_pivot_row_num"
COL_NUM = "$omni_pivot_col_num"
ROW_TOTAL = "$omni_row_total_indicator"
#: How a NULL pivot value reads in a header (Assay's choice), and a row total's header.
NULL_TEXT = "null"
ROW_TOTAL_TEXT = "Row Total"


@dataclass(frozen=True, slots=True)
class Grid:
    """The wide table and its two header rows (``top`` unique, usable as JSON keys)."""

    table: pa.Table
    top: list[str]
    labels: list[str]


def is_pivoted(table: pa.Table) -> bool:
    return ROW_NUM in table.column_names and COL_NUM in table.column_names


def pivot_grid(
    table: pa.Table,
    pivots: Sequence[str],
    fields: Mapping[str, Any],
    *,
    formatted: bool = False,
    row_totals: Sequence[str] = (),
) -> Grid:
    """The wide grid of a long pivoted ``table`` (date grains already as text).

    ``pivots``: the query's pivot fields; ``fields``: ``summary.fields`` (labels, formats,
    and which fields are dimensions: the others are measures, one grid column each per pivot
    value); ``formatted``: every value in its field's format (``formatResults``);
    ``row_totals``: the measures totalled per row, a last "Row Total" column each.
    """
    row_nums = table.column(ROW_NUM).to_pylist()
    col_nums = table.column(COL_NUM).to_pylist()
    helpers = [ROW_NUM, COL_NUM]
    is_total = [False] * len(row_nums)
    if ROW_TOTAL in table.column_names:
        is_total = [v is not None for v in table.column(ROW_TOTAL).to_pylist()]
        helpers.append(ROW_TOTAL)
    table = table.drop_columns(helpers)
    if formatted:
        table = formatted_table(table, fields)
    names = table.column_names
    row_dims = [n for n in names if n not in pivots and _is_dimension(fields, n)]
    measures = [n for n in names if n not in pivots and n not in row_dims]
    pivot_cols = [n for n in pivots if n in names]
    values = {n: table.column(n).to_pylist() for n in names}
    rows = sorted(set(row_nums))
    at_cells = [i for i, total in enumerate(is_total) if not total]
    cols = sorted({col_nums[i] for i in at_cells})
    row_at = {row_nums[i]: i for i in reversed(range(len(row_nums)))}  # a row's first line
    col_at = {col_nums[i]: i for i in reversed(at_cells)}
    cell = {(row_nums[i], col_nums[i]): i for i in at_cells}
    total_at = {row_nums[i]: i for i, total in enumerate(is_total) if total}
    totalled = [m for m in row_totals if m in measures]

    columns: list[pa.Array] = []
    for n in row_dims:
        kind = table.schema.field(n).type
        columns.append(pa.array([values[n][row_at[r]] for r in rows], type=kind))
    for c in cols:
        for m in measures or [None]:
            if m is None:  # no measures: an empty column per pivot value
                columns.append(pa.nulls(len(rows), pa.string()))
                continue
            kind = table.schema.field(m).type
            found = [cell.get((r, c)) for r in rows]
            columns.append(
                pa.array([None if i is None else values[m][i] for i in found], type=kind)
            )
    for m in totalled:
        found = [total_at.get(r) for r in rows]
        kind = table.schema.field(m).type
        columns.append(pa.array([None if i is None else values[m][i] for i in found], type=kind))

    def label(name: str) -> str:
        return str((fields.get(name) or {}).get("label") or name)

    top = [label(n) for n in row_dims[:-1]]
    if row_dims:
        top.append(" / ".join(label(p) for p in pivot_cols))
    labels = [label(n) for n in row_dims]
    for c in cols:
        heading = " / ".join(_text(values[p][col_at[c]]) for p in pivot_cols)
        for m in measures or [None]:
            top.append(heading)
            labels.append("" if m is None else label(m))
    for m in totalled:
        top.append(ROW_TOTAL_TEXT)
        labels.append(label(m))
    unique = unique_labels(top)
    wide = pa.table(columns, names=[f"c{i}" for i in range(len(columns))])
    return Grid(wide, unique, labels)


def _is_dimension(fields: Mapping[str, Any], name: str) -> bool:
    return bool((fields.get(name) or {}).get("is_dimension", True))


def _text(value: Any) -> str:
    return NULL_TEXT if value is None else str(value)


def grid_json(grid: Grid) -> bytes:
    header = dict(zip(grid.top, grid.labels, strict=True))
    rows = [header, *to_json_rows(grid.table, grid.top)]
    return json.dumps(rows, separators=(",", ":")).encode()


def grid_csv(grid: Grid) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(grid.top)
    writer.writerow(grid.labels)
    out = io.BytesIO(text.getvalue().encode())
    out.seek(0, io.SEEK_END)
    if grid.table.num_columns:
        pacsv.write_csv(grid.table, out, pacsv.WriteOptions(include_header=False))
    return out.getvalue()


def grid_xlsx(grid: Grid) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "remove_timezone": True})
    sheet = book.add_worksheet("Result")
    for r, header in enumerate((grid.top, grid.labels)):
        for c, text in enumerate(header):
            sheet.write(r, c, text)
    for r, row in enumerate(to_json_rows(grid.table, grid.top), start=2):
        for c, value in enumerate(row.values()):
            sheet.write(r, c, json.dumps(value) if isinstance(value, list | dict) else value)
    book.close()
    return out.getvalue()
