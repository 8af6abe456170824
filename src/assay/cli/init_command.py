"""``assay init``: a starter model from a database, so a user goes from tables to answered
queries in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from assay.cli.app import app, err, fail, out
from assay.errors import AssayError


@app.command()
def init(
    connection: Annotated[
        str, typer.Option(help="The database: duckdb:///path/file.duckdb or a path.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the model into.")],
    name: Annotated[
        str | None, typer.Option(help="The model's name (default: the folder's).")
    ] = None,
    schema: Annotated[str | None, typer.Option(help="Only this schema.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace files already in the folder.")] = False,
) -> None:
    """Write a starter model from a database's tables.

    One view per table with its columns, primary keys, relationships and a topic per table."""
    from assay.engines import DuckDBEngine
    from assay.engines.introspect import describe_duckdb
    from assay.engines.urls import duckdb_file
    from assay.semantic.loader import load_model
    from assay.semantic.starter import normalize_name, starter_files, write_model

    try:
        path = duckdb_file(connection)
    except AssayError as exc:
        raise typer.BadParameter(exc.message) from exc
    model_name = normalize_name(name or out_dir.resolve().name, prefix="m")
    try:
        engine = DuckDBEngine(path)
        try:
            shape = describe_duckdb(engine, schema)
            files = starter_files(shape, model_name=model_name)
            try:
                written = write_model(out_dir, files, overwrite=overwrite)
            except FileExistsError as exc:
                err.print(Text(f"{exc} (use --overwrite to replace)", style="red"))
                raise typer.Exit(1) from exc
            model = load_model(out_dir, catalog=engine.catalog())
        finally:
            engine.close()
    except AssayError as exc:
        raise fail(exc) from exc
    out.print(Text(f"Wrote {len(written)} files to {out_dir}: model {model.name} ({model.id}), "
                   f"{len(model.views)} views, {len(model.relationships)} relationships, "
                   f"{len(model.topics)} topics. It validates; edit it freely."))  # fmt: skip
