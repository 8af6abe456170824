"""``assay validate`` and ``assay compile``: working on models without a server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from assay.cli.app import app, err, fail, out, read_query, settings_of
from assay.errors import AssayError, ModelInvalid

DIALECTS = ("duckdb", "postgres", "mysql", "snowflake", "bigquery", "trino", "spark")


def _catalog(database: Path | None) -> dict[str, dict[str, str]] | None:
    """The database's column types, when a database is at hand."""
    from assay.engines import DuckDBEngine

    if database is None or not database.exists():
        return None
    engine = DuckDBEngine(database)
    try:
        return engine.catalog()
    finally:
        engine.close()


@app.command()
def validate(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Model folder (default: the tpch demo model).")
    ] = None,
    database: Annotated[
        Path | None, typer.Option(help="DuckDB file to check tables and columns against.")
    ] = None,
) -> None:
    """Check a model folder and list every problem found."""
    from assay.demo.tpch import tpch_model_dir
    from assay.semantic.loader import load_model

    folder = path or settings_of(ctx).resolved_models_dir or tpch_model_dir()
    try:
        model = load_model(folder, catalog=_catalog(database))
    except ModelInvalid as exc:
        err.print(Text(exc.message.splitlines()[0], style="red"))
        for issue in exc.issues:
            tag = "warning" if issue.is_warning else "error"
            err.print(Text(f"  {tag}: {issue}"))
        raise typer.Exit(1) from exc
    except AssayError as exc:
        raise fail(exc) from exc
    for issue in model.warnings:
        err.print(Text(f"  warning: {issue}", style="yellow"))
    out.print(
        Text(
            f"ok model {model.name} ({model.id}): {len(model.views)} views, "
            f"{len(model.topics)} topics, version {model.version}"
        )
    )


@app.command("compile")
def compile_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Query JSON, @file.json, or - for stdin.")],
    model: Annotated[Path | None, typer.Option(help="Model folder.")] = None,
    dialect: Annotated[str | None, typer.Option(help=f"One of {', '.join(DIALECTS)}.")] = None,
) -> None:
    """Print the SQL a semantic query compiles to."""
    from assay.demo.tpch import tpch_model_dir
    from assay.semantic.compiler import compile_query
    from assay.semantic.loader import load_model

    folder = model or settings_of(ctx).resolved_models_dir or tpch_model_dir()
    try:
        compiled = compile_query(load_model(folder), read_query(query), dialect=dialect)
    except AssayError as exc:
        raise fail(exc) from exc
    typer.echo(compiled.pretty_sql())
    if compiled.missing_fields:
        err.print(Text(f"missing fields (dropped): {', '.join(compiled.missing_fields)}"))
