"""``assay serve``, ``assay demo`` and ``assay keys``: running the API and managing its keys."""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from assay.cli.app import DEMO_QUERY, HomeOption, app, err, fail, out, settings_of
from assay.errors import AssayError

if TYPE_CHECKING:
    from assay.config import Settings
    from assay.jobs.store import JobStore

keys = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys, name="keys")


def _open_store(settings: Settings) -> JobStore:
    """The job store, imported when a command uses it: ``--help`` and the key commands'
    help stay light."""
    from assay.jobs.stores import open_job_store

    return open_job_store(settings, pool_size=2)


def _serve(settings: Settings) -> None:
    # Imported here: the key commands should start in a blink, without the web stack.
    import uvicorn

    from assay.server.app import create_app
    from assay.server.limits import MAX_HEADER_BYTES, guarded_protocol
    from assay.server.logs import configure_logging

    configure_logging(settings.log_format)
    app = create_app(settings)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Answer open long-polls at once: uvicorn waits for them before stopping.
            state = getattr(app.state, "assay", None)
            if state is not None and state.runner.loop is not None:
                state.runner.loop.call_soon_threadsafe(state.runner.release_waiters)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        # log_config None: uvicorn's own lines go through the handler above, in its format
        app, host=settings.host, port=settings.port, log_level="warning", log_config=None,
        http=guarded_protocol(settings.client_timeout_seconds),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )  # fmt: skip
    Server(config).run()


@app.command()
def serve(
    ctx: typer.Context,
    home: HomeOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    models: Annotated[Path | None, typer.Option(help="Model folder.")] = None,
    database: Annotated[Path | None, typer.Option(help="DuckDB file.")] = None,
    log_format: Annotated[
        str | None, typer.Option(help="Log lines as text or json (setting log_format).")
    ] = None,
) -> None:
    """Serve the query API."""
    settings = settings_of(ctx, home, host=host, port=port, models_dir=models,
                           duckdb_path=database, log_format=log_format)  # fmt: skip
    try:
        _serve(settings)
    except AssayError as exc:
        raise fail(exc) from exc


def prepare_demo(settings: Settings, scale: float, *, duckdb: bool = True) -> Path:
    """The demo database (unless the data goes elsewhere) and an editable copy of the tpch
    model, in the home folder."""
    from assay.cli.demo_governance import enable_example_filter
    from assay.demo.tpch import generate_tpch, tpch_model_dir

    if duckdb:
        generate_tpch(settings.resolved_duckdb_path, scale)
    target = settings.home / "models" / "tpch"
    if not target.exists():
        shutil.copytree(tpch_model_dir(), target)
        enable_example_filter(target)  # the row-level security example, on in this copy
    return target


def _demo_on_engine(
    settings: Settings, engine: str, connection: str | None, scale: float, models: Path
) -> Settings:
    """Load the demo into another database and serve the model from there; the settings are
    written to a file in the home folder, to serve the same way later."""
    from assay.demo.engines import check_connection, load_demo

    url = check_connection(engine, connection)
    load_demo(engine, url, scale, settings.home)
    config = settings.home / f"demo-{engine}.toml"
    config.write_text(
        f"home = {json.dumps(str(settings.home))}\n"
        f'models = [{{folder = {json.dumps(str(models))}, connection = "tpch"}}]\n'
        f"[connections]\ntpch = {json.dumps(url)}\n"
    )
    # soft_wrap: a path broken over two lines could not be pasted back
    out.print(Text(f"TPC-H loaded on {engine}; serve it again with: assay --config {config} "
                   "serve"), soft_wrap=True)  # fmt: skip
    return dataclasses.replace(settings, connections={"tpch": url},
                               models=({"folder": str(models), "connection": "tpch"},))  # fmt: skip


@app.command()
def demo(
    ctx: typer.Context,
    home: HomeOption = None,
    scale: Annotated[float | None, typer.Option(help="TPC-H scale factor.")] = None,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Prepare only; do not serve.")
    ] = False,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    engine: Annotated[
        str, typer.Option(help="Where the data lives: duckdb, postgres, mariadb or spark.")
    ] = "duckdb",
    connection: Annotated[
        str | None, typer.Option(help="The database URL, for an engine other than duckdb.")
    ] = None,
) -> None:
    """Prepare the TPC-H demo, create a key and serve the API.

    The demo's data and model are made once, in the home folder."""
    settings = settings_of(ctx, home, host=host, port=port)
    scale = scale or settings.demo_scale
    where = settings.home if engine == "duckdb" else f"{engine}"
    try:
        with out.status(f"Preparing TPC-H data at scale {scale} in {where} ..."):
            models = prepare_demo(settings, scale, duckdb=engine == "duckdb")
            if engine != "duckdb":
                settings = _demo_on_engine(settings, engine, connection, scale, models)
    except AssayError as exc:
        raise fail(exc) from exc
    from assay.cli.demo_governance import example_commands, filter_is_on, prepare_users
    from assay.jobs.keys import create_key, org_admin
    from assay.semantic.model import model_id_for

    model_id = model_id_for("tpch")
    store = _open_store(settings)
    try:
        users = prepare_users(store)  # before serving: the model reads their attribute
        admin = org_admin(store)
        token = None if no_serve else create_key(store, "org", user=admin, label="demo")[1]
    except AssayError as exc:
        raise fail(exc) from exc
    finally:
        store.close()
    out.print(Text(f"Demo ready in {settings.home}: TPC-H scale {scale}, model tpch ({model_id}) "
                   f"in {models}"))  # fmt: skip
    if token is None:
        return
    url = f"http://{settings.host}:{settings.port}"
    body = json.dumps({"query": {**DEMO_QUERY, "modelId": model_id}, "resultType": "csv"})
    typer.echo(f"\nAPI key (shown once): {token}\n")
    typer.echo("Run a query:")
    typer.echo(
        f"  curl -s {url}/api/v1/query/run -H 'Authorization: Bearer {token}' "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}\n"
    )
    typer.echo("Or ask in plain words, with Assay's own client (from another terminal here):")
    question = shlex.quote("revenue by region in 1995")
    typer.echo(f"  ASSAY_URL={url} ASSAY_API_KEY={token} {_this_command()} ask {question}\n")
    if filter_is_on(models):
        typer.echo(
            "Row-level security: the customer topic shows each user only the customers "
            f"of their regions ({models / 'customer.topic.yaml'}; docs/governance.md):"
        )
        for line in example_commands(url, token, model_id, users):
            typer.echo(line)
        typer.echo("")
    typer.echo(f"Serving on {url} (Ctrl-C to stop)")
    _serve(settings)


def _this_command() -> str:
    """How `assay` was started (scripts/demo: .venv/bin/assay), so that a printed command
    can be pasted as it is; plain ``assay`` when started some other way."""
    started = sys.argv[0]
    return shlex.quote(started) if Path(started).name == "assay" else "assay"


@keys.command("create")
def keys_create(
    ctx: typer.Context,
    home: HomeOption = None,
    org: Annotated[bool, typer.Option("--org", help="An organization key.")] = False,
    user: Annotated[
        str | None, typer.Option("--user", help="A personal token for this email.")
    ] = None,
    label: Annotated[str | None, typer.Option(help="A note to recognise the key by.")] = None,
) -> None:
    """Create a key. The token is printed once, alone on the last line of standard output.

    --org: an organization key, for the organization's admin user (made on first use).
    --user EMAIL: a personal token for that user (made, not as an admin, if they are new)."""
    if org == (user is not None):
        raise typer.BadParameter("give exactly one of --org or --user EMAIL")
    from assay.jobs.keys import create_key, org_admin, user_for_email
    from assay.jobs.users import is_email

    if user is not None and not is_email(user):
        raise typer.BadParameter(f"--user {user!r} is not an email address")
    settings = settings_of(ctx, home)
    store = _open_store(settings)
    try:
        owner = org_admin(store) if org else user_for_email(store, user or "")
        key, token = create_key(store, "org" if org else "pat", user=owner, label=label)
    except AssayError as exc:
        raise fail(exc) from exc
    finally:
        store.close()
    kind = "organization key" if org else "personal access token"
    err.print(Text(f"Created {kind} for {owner.user_name} (userId {owner.id}), id {key.id}. "
                   "Store the token now: it is not kept."))  # fmt: skip
    typer.echo(token)


@keys.command("list")
def keys_list(ctx: typer.Context, home: HomeOption = None) -> None:
    """List keys (never their tokens)."""
    store = _open_store(settings_of(ctx, home))
    try:
        for key in store.api_keys():
            created = datetime.fromtimestamp(key.created_at, UTC).strftime("%Y-%m-%d %H:%M")
            state = "revoked" if key.revoked_at else "active"
            user = store.users.user(key.user_id) if key.user_id else None
            owner = user.user_name if user else f"{key.user_email or '?'} (deleted user)"
            typer.echo(f"{key.id}  {key.kind}  {key.prefix}...  {owner}  {created}  {state}"
                       + (f"  {key.label}" if key.label else ""))  # fmt: skip
    finally:
        store.close()


@keys.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (see assay keys list).")],
    home: HomeOption = None,
) -> None:
    """Revoke a key: requests with its token are refused from now on."""
    store = _open_store(settings_of(ctx, home))
    try:
        if not store.revoke_key(key_id, time.time()):
            err.print(Text(f"No active key with id {key_id}", style="red"))
            raise typer.Exit(1)
    finally:
        store.close()
    typer.echo(f"revoked {key_id}")
