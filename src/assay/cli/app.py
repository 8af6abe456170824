"""The ``assay`` command's app object and what its commands share."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from assay.config import Settings, load_client_settings, load_settings
from assay.errors import AssayError

if TYPE_CHECKING:  # pyarrow is imported by the commands that print results, not by --help
    import pyarrow as pa

app = typer.Typer(
    help="Assay: governed semantic queries and AI answers, speaking Omni's REST API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help and usage errors as plain text: typer's rich rendering of them loads rich's
    # markdown parser, 60-70 ms of every `--help` (a third of it)
    rich_markup_mode=None,
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

HomeOption = Annotated[
    Path | None, typer.Option("--home", help="Assay's folder (default: ASSAY_HOME or .assay).")
]


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


def settings_of(ctx: typer.Context, home: Path | None = None, **overrides: Any) -> Settings:
    """The settings built at start-up, with command-line options laid over them."""
    settings = ctx.obj
    assert isinstance(settings, Settings)
    changes = {k: v for k, v in overrides.items() if v is not None}
    if home is not None:
        changes["home"] = home
    return dataclasses.replace(settings, **changes) if changes else settings


def server_and_key(settings: Settings, url: str | None, key: str | None) -> tuple[str, str]:
    """The server a client command calls and the key it sends: the options, else
    ``ASSAY_URL`` and ``ASSAY_API_KEY``, else (the address only) the configured host and port.
    Read here, not at start-up, so that a bad ``ASSAY_URL`` never stops ``assay serve``."""
    try:
        client = load_client_settings()
    except AssayError as exc:
        err.print(Text(f"error: {exc.message}", style="red"), soft_wrap=True)
        raise typer.Exit(2) from exc
    token = key or client.api_key
    if not token:
        raise typer.BadParameter("give --key or set ASSAY_API_KEY (see assay keys create)")
    return url or client.url or f"http://{settings.host}:{settings.port}", token


def unreachable(base: str, exc: Exception) -> typer.Exit:
    """A server that is not there is the commonest first failure: say where we looked."""
    err.print(
        Text(f"Cannot reach the server at {base}: {exc}. Is `assay serve` running there? "
             "Give --url or set ASSAY_URL.", style="red"),
        soft_wrap=True,
    )  # fmt: skip
    return typer.Exit(1)


def fail(exc: AssayError) -> typer.Exit:
    # soft_wrap: paths and commands in a message (e.g. how to restore a damaged store) must
    # not be broken over lines, or pasting them back runs something else.
    err.print(Text(f"{exc.error_type}: {exc.message}", style="red"), soft_wrap=True)
    return typer.Exit(1)


def read_query(text: str) -> dict[str, Any]:
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


def print_table(table: pa.Table, title: str | None = None, bold: Collection[int] = ()) -> None:
    """``bold``: indexes of rows to print bold (totals rows)."""
    # Text() everywhere: field names like orders.o_orderdate[year] are not rich markup.
    view = Table(title=Text(title) if title else None, show_lines=False)
    for name in table.column_names:
        view.add_column(Text(name), overflow="fold")
    for i, row in enumerate(table.to_pylist()):
        cells = (Text("" if v is None else str(v)) for v in row.values())
        view.add_row(*cells, style="bold" if i in bold else None)
    out.print(view)
