"""``resultType`` csv/json/xlsx: a finished job's rows as one document, for people and
spreadsheets rather than for Omni's decoding clients: date grains read as text (``1995``,
``1995-03``), and with ``formatResults`` every value in its field's format. The NDJSON
answer's Arrow result keeps typed timestamps."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import Response

from assay.jobs.model import Job
from assay.results.arrow import read_table, to_csv, to_json, to_xlsx
from assay.results.formats import date_types_of, formatted_table, grains_as_text
from assay.results.pivot_grid import grid_csv, grid_json, grid_xlsx, is_pivoted, pivot_grid
from assay.results.row_kinds import with_sidecars_merged, without_helpers
from assay.server.lines import RESULT_TYPES


def result_document(kind: str, job: Job, path: Path, *, formatted: bool = False) -> Response:
    """The rows alone, as one document; JSON rows are keyed by display label, as Omni's."""
    table = read_table(path)
    pivoted = is_pivoted(table)  # its numbering builds the grid; other helpers are dropped
    fields = (job.summary or {}).get("fields", {})
    if not pivoted:  # a raw SQL totals row shows each total under its column
        table = without_helpers(with_sidecars_merged(table, fields))
    labels = [(fields.get(name) or {}).get("label", name) for name in table.column_names]
    table = grains_as_text(table, date_types_of(table.column_names, fields))
    if pivoted:  # the wide grid, as Omni's table shows it
        query = job.request.get("query", {})
        totals = list(query.get("row_totals") or {})
        grid = pivot_grid(
            table, query.get("pivots") or [], fields, formatted=formatted, row_totals=totals
        )
        made = {"csv": grid_csv, "json": grid_json, "xlsx": grid_xlsx}[kind](grid)
        return Response(made, media_type=RESULT_TYPES[kind])
    if formatted:
        table = formatted_table(table, fields)
    if kind == "csv":
        body = to_csv(table)
    elif kind == "json":
        body = to_json(table, labels)
    else:
        body = to_xlsx(table, labels)
    return Response(body, media_type=RESULT_TYPES[kind])
