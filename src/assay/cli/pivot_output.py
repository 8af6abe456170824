"""``assay query`` on a pivoted result: the wide grid Omni's table shows (two header rows),
as the ``resultType`` documents give it, instead of the long numbered cells (CLI layer)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from assay.cli.app import out

if TYPE_CHECKING:
    import pyarrow as pa


def emit_pivoted(
    table: pa.Table,
    fmt: str,
    pivots: Sequence[str],
    fields: Mapping[str, Any],
    row_totals: Sequence[str] = (),
) -> None:
    """Print the grid of ``table`` (Omni's long layout) as a terminal table, CSV or JSON;
    ``fields``: ``summary.fields`` (labels, date grains, which fields are measures)."""
    from assay.results.formats import date_types_of, grains_as_text
    from assay.results.pivot_grid import grid_csv, grid_json, pivot_grid

    table = grains_as_text(table, date_types_of(table.column_names, fields))
    grid = pivot_grid(table, pivots, fields, row_totals=list(row_totals))
    if fmt == "csv":
        sys.stdout.buffer.write(grid_csv(grid))
    elif fmt == "json":
        sys.stdout.buffer.write(grid_json(grid) + b"\n")
    else:
        view = Table(show_lines=False)
        for top, label in zip(grid.top, grid.labels, strict=True):
            view.add_column(Text(f"{top}\n{label}"), overflow="fold")
        for row in grid.table.to_pylist():
            view.add_row(*(Text("" if v is None else str(v)) for v in row.values()))
        out.print(view)
    sys.stdout.flush()
