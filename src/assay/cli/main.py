"""The ``assay`` command. The only layer that reads argv and env and configures logging."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from assay.config import Settings, load_settings
from assay.demo.tpch import generate_tpch, tpch_model_dir
from assay.engines import DuckDBEngine
from assay.errors import AssayError, ModelInvalid
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.loader import load_model
from assay.semantic.model import SemanticModel

app = typer.Typer(
    help="Assay: governed semantic queries and AI answers, speaking Omni's REST API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

DEMO_QUERY: dict[str, Any] = {
    "table": "lineitem",
    "join_paths_from_topic_name": "lineitem",
    "fields": ["region.r_name", "orders.o_orderdate[year]", "lineitem.revenue"],
    "filters": {"orders.o_orderdate": {"type": "date", "kind": "BETWEEN",
                                       "left_side": "1995-01-01", "right_side": "1997-01-01"}},
    "sorts": [{"column_name": "region.r_name", "sort_descending": False},
              {"column_name": "orders.o_orderdate[year]", "sort_descending": False}],
    "limit": 20,
}  # fmt: skip


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(help="Settings file (TOML).")] = None,
) -> None:
    try:
        ctx.obj = load_settings(file=config)
    except AssayError as exc:
        err.print(Text(f"error: {exc.message}", style="red"))
        raise typer.Exit(2) from exc


def _model(settings: Settings, path: Path | None) -> SemanticModel:
    return load_model(path or settings.models_dir or tpch_model_dir())


def _read_query(text: str) -> dict[str, Any]:
    """A query given inline as JSON, as @file, or as - for standard input."""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"the query is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("query"), dict):
        data = data["query"]  # a whole /query/run body works too
    if not isinstance(data, dict):
        raise typer.BadParameter("the query must be a JSON object")
    return data


def _print_table(table: pa.Table, title: str | None = None) -> None:
    # Text() everywhere: field names like orders.o_orderdate[year] are not rich markup.
    view = Table(title=Text(title) if title else None, show_lines=False)
    for name in table.column_names:
        view.add_column(Text(name), overflow="fold")
    for row in table.to_pylist():
        view.add_row(*(Text("" if v is None else str(v)) for v in row.values()))
    out.print(view)


@app.command()
def demo(
    ctx: typer.Context,
    scale: Annotated[float | None, typer.Option(help="TPC-H scale factor.")] = None,
    force: Annotated[bool, typer.Option(help="Regenerate even if the data exists.")] = False,
) -> None:
    """Generate the TPC-H demo data (once) and run a sample semantic query on it."""
    settings = _settings(ctx)
    scale = scale or settings.demo_scale
    path = settings.resolved_duckdb_path
    with out.status(f"Generating TPC-H data at scale {scale} into {path} ..."):
        generate_tpch(path, scale, force=force)
    engine = DuckDBEngine(path, threads=settings.duckdb_threads)
    model = load_model(tpch_model_dir(), catalog=engine.catalog())
    out.print(f"[green]Demo data ready[/green] at {path} (TPC-H scale {scale}).")
    out.print(f"Model [bold]{model.name}[/bold] (id {model.id}): {len(model.views)} views, "
              f"topics {', '.join(model.topics)}.")  # fmt: skip
    compiled = compile_query(model, DEMO_QUERY)
    try:
        table = engine.execute(compiled.sql)
    finally:
        engine.close()
    _print_table(table.rename_columns(compiled.columns), "Revenue by customer region and year")
    typer.echo("\nSQL:\n" + compiled.pretty_sql())
    # The command as this process was started (.venv/bin/assay for a new user), ready to paste.
    command = shlex.quote(sys.argv[0]) if sys.argv and sys.argv[0] else "assay"
    typer.echo(f"\nTry your own query:\n  {command} query {shlex.quote(json.dumps(DEMO_QUERY))}")


def _catalog(database: Path | None) -> dict[str, dict[str, str]] | None:
    """The database's column types, when a database is at hand."""
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
    folder = path or _settings(ctx).models_dir or tpch_model_dir()
    try:
        model = load_model(folder, catalog=_catalog(database))
    except ModelInvalid as exc:
        err.print(Text(exc.message.splitlines()[0], style="red"))
        for issue in exc.issues:
            tag = "warning" if issue.is_warning else "error"
            err.print(Text(f"  {tag}: {issue}"))
        raise typer.Exit(1) from exc
    except AssayError as exc:
        err.print(Text(f"{exc.error_type}: {exc.message}", style="red"))
        raise typer.Exit(1) from exc
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
    try:
        compiled = compile_query(_model(_settings(ctx), model), _read_query(query), dialect=dialect)
    except AssayError as exc:
        err.print(Text(f"{exc.error_type}: {exc.message}", style="red"))
        raise typer.Exit(1) from exc
    typer.echo(compiled.pretty_sql())
    if compiled.missing_fields:
        err.print(Text(f"missing fields (dropped): {', '.join(compiled.missing_fields)}"))


@app.command()
def query(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Query JSON, @file.json, or - for stdin.")],
    model: Annotated[Path | None, typer.Option(help="Model folder.")] = None,
    database: Annotated[Path | None, typer.Option(help="DuckDB file.")] = None,
) -> None:
    """Run a semantic query on DuckDB and print the rows."""
    settings = _settings(ctx)
    path = database or settings.resolved_duckdb_path
    try:
        engine = DuckDBEngine(path, threads=settings.duckdb_threads)
        try:
            folder = model or settings.models_dir or tpch_model_dir()
            semantic = load_model(folder, catalog=engine.catalog())
            compiled = compile_query(semantic, _read_query(query))
            table = engine.execute(compiled.sql)
        finally:
            engine.close()
    except AssayError as exc:
        err.print(Text(f"{exc.error_type}: {exc.message}", style="red"))
        raise typer.Exit(1) from exc
    _print_table(table.rename_columns(compiled.columns))
    if compiled.missing_fields:
        err.print(Text(f"missing fields (dropped): {', '.join(compiled.missing_fields)}"))


def main() -> None:
    app()
