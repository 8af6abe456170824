"""``assay query``: run a semantic query on a server (or in this process with ``--local``)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.text import Text

from assay.cli.app import (
    app,
    err,
    fail,
    out,
    print_table,
    read_query,
    server_and_key,
    settings_of,
    unreachable,
)
from assay.errors import AssayError

if TYPE_CHECKING:  # imported where a result is printed, not for --help
    import pyarrow as pa

    from assay.semantic.compiler import FieldMeta

Format = Literal["table", "csv", "json", "arrow"]


def _emit(
    table: pa.Table,
    fmt: str,
    date_types: list[str | None],
    fields: Mapping[str, Any],
) -> None:
    totals: tuple[int, ...] = ()
    if fmt != "arrow":  # for people: grains as text; Arrow keeps typed timestamps for programs
        from assay.cli.result_rows import readable
        from assay.results.formats import grains_as_text

        table = grains_as_text(table, date_types)
        # no $omni_ helpers; totals rows labelled in the terminal table
        shown = readable(table, fields, label=fmt == "table")
        table, totals = shown.table, shown.totals
    if fmt == "table":
        print_table(table, bold=totals)
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sys.stdout.buffer)
    elif fmt == "json":
        from assay.results.arrow import to_json

        labels = [(fields.get(c) or {}).get("label", c) for c in table.column_names]
        sys.stdout.buffer.write(to_json(table, labels) + b"\n")
    else:  # arrow: an IPC stream, for scripts
        from pyarrow import ipc

        with ipc.new_stream(sys.stdout.buffer, table.schema) as writer:
            writer.write_table(table)
    sys.stdout.flush()


@app.command()
def query(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Query JSON, @file.json, or - for stdin.")],
    url: Annotated[
        str | None,
        typer.Option(help="Server URL (default: ASSAY_URL or the configured host and port)."),
    ] = None,
    key: Annotated[str | None, typer.Option(help="API key (default: ASSAY_API_KEY).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or arrow.")] = "table",
    local: Annotated[
        bool, typer.Option("--local", help="Run in this process on the DuckDB file.")
    ] = False,
    model: Annotated[Path | None, typer.Option(help="Model folder (with --local).")] = None,
    database: Annotated[Path | None, typer.Option(help="DuckDB file (with --local).")] = None,
) -> None:
    """Run a semantic query and show the rows."""
    if fmt not in ("table", "csv", "json", "arrow"):
        raise typer.BadParameter("--format is one of table, csv, json, arrow")
    settings = settings_of(ctx)
    body = read_query(query)
    from assay.semantic.model import model_id_for

    body.setdefault("modelId", model_id_for("tpch"))
    if local:
        table, fields, missing = _run_local(
            settings.resolved_models_dir, database or settings.resolved_duckdb_path, model, body
        )
        summary_fields = {f.fully_qualified_name: f.to_dict() for f in fields}
    else:
        base, token = server_and_key(settings, url, key)
        import httpx

        from assay.client import QueryClient, QueryFailed

        try:
            with (
                QueryClient(base, token) as client,
                out.status("Running the query ...", spinner="dots"),
            ):
                result = client.run(body)
        except QueryFailed as exc:
            err.print(Text(str(exc), style="red"))
            raise typer.Exit(1) from exc
        except httpx.TransportError as exc:
            raise unreachable(base, exc) from exc
        summary_fields = result.summary.get("fields", {})
        table, missing = result.table, result.summary.get("missing_fields", [])
    if fmt != "arrow" and body.get("pivots") and "$omni_pivot_col_num" in table.column_names:
        from assay.cli.pivot_output import emit_pivoted

        totals = list(body.get("row_totals") or {})
        emit_pivoted(table, fmt, body["pivots"], summary_fields, totals)
    else:
        from assay.results.formats import date_types_of

        # per column of the result, helpers included (they have no grain)
        date_types = date_types_of(table.column_names, summary_fields)
        _emit(table, fmt, date_types, summary_fields)
    if missing:
        err.print(Text(f"missing fields (dropped): {', '.join(missing)}"))


def _run_local(
    models_dir: Path | None, database: Path, model: Path | None, body: dict[str, object]
) -> tuple[pa.Table, tuple[FieldMeta, ...], list[str]]:
    from assay.demo.tpch import tpch_model_dir
    from assay.engines import DuckDBEngine
    from assay.semantic.compiler import compile_query
    from assay.semantic.loader import load_model

    try:
        engine = DuckDBEngine(database)
        try:
            semantic = load_model(model or models_dir or tpch_model_dir(), catalog=engine.catalog())
            compiled = compile_query(semantic, body)
            table = engine.execute(compiled.sql).rename_columns(compiled.columns)
        finally:
            engine.close()
    except AssayError as exc:
        raise fail(exc) from exc
    return table, compiled.fields, list(compiled.missing_fields)
