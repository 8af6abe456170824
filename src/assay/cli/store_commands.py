"""``assay store``: back up the SQLite job store while the server runs, verify a backup, and
restore one into a home whose server is stopped. (A PostgreSQL store is backed up with
``pg_dump``: see docs/operations.md.)"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from assay.cli.app import HomeOption, app, err, out, settings_of
from assay.config import Settings
from assay.engines.urls import redact
from assay.errors import AssayError, BackupError

if TYPE_CHECKING:  # the store's modules load when a store command runs, not for --help
    from assay.jobs.store_backup import BackupSummary

store = typer.Typer(
    help="Back up, verify and restore the job store (SQLite in home).", no_args_is_help=True
)
app.add_typer(store, name="store")


def _sqlite_files(settings: Settings) -> tuple[Path, Path]:
    """The store file and the results folder the settings give a server."""
    from assay.jobs.stores import sqlite_store_path

    path = sqlite_store_path(settings)
    if path is None:
        raise BackupError(
            f"The job store is {redact(settings.job_store)} "
            f"(schema {settings.job_store_schema}), not SQLite: "
            "use PostgreSQL's own tools, `pg_dump --format=custom "
            f"--schema={settings.job_store_schema} --file=assay-store.dump <job_store URL>` "
            "to back it up and `pg_restore` to restore it (docs/operations.md)"
        )
    if path.resolve() != settings.job_store_path.resolve():
        # The server keeps AI jobs in home's assay.sqlite whatever job_store says.
        raise BackupError(
            f"job_store puts the job store in {path}, apart from {settings.job_store_path} "
            "(where the server keeps AI jobs): `assay store` handles the store in home only. "
            "Back up both files with sqlite3's .backup command (docs/operations.md)."
        )
    return settings.job_store_path, settings.results_dir


def _failed(exc: AssayError, unchanged: Path | None = None) -> typer.Exit:
    err.print(Text(f"error: {exc.message}", style="red"), soft_wrap=True)
    if unchanged is not None and "nothing was changed" not in exc.message:
        err.print(Text(f"Nothing in {unchanged} was changed.", style="red"), soft_wrap=True)
    return typer.Exit(1)


def _n(count: int, thing: str) -> str:
    return f"{count} {thing}" if count == 1 else f"{count} {thing}s"


def _describe(summary: BackupSummary) -> str:
    c = summary.counts
    size = summary.result_bytes / 1e6
    return (
        f"{_n(c.get('jobs', 0), 'job')}, {_n(c.get('api_keys', 0), 'key')}, "
        f"{_n(c.get('users', 0), 'user')}, {_n(c.get('ai_jobs', 0), 'AI job')}, "
        f"{_n(summary.result_files, 'result file')} ({size:.1f} MB)"
    )


def _warn_missing(summary: BackupSummary, results: str) -> None:
    missing = summary.missing_results
    if missing:
        names = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        err.print(
            Text(f"warning: the store refers to {_n(len(missing), 'result file')} that "
                 f"{results} lacked already ({names}): their jobs answer 'Result is no longer "
                 "available' there, and after a restore.", style="yellow"),
            soft_wrap=True,
        )  # fmt: skip


@store.command("backup")
def store_backup(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="A new (or empty) folder for the backup.")],
    home: HomeOption = None,
) -> None:
    """Back up the job store and its results into a new folder, while the server runs.

    Jobs, keys, users and AI jobs (a snapshot of the database), then the result files the
    snapshot refers to, with a manifest of checksums. Nothing is left at DEST on failure."""
    from assay.jobs.store_backup import back_up

    settings = settings_of(ctx, home)
    try:
        database, results = _sqlite_files(settings)
        summary = back_up(database, results, dest)
    except AssayError as exc:
        raise _failed(exc) from exc
    out.print(Text(f"Backed up {database} to {dest}: {_describe(summary)}."), soft_wrap=True)
    _warn_missing(summary, str(results))
    out.print(Text(f"Check it with: assay store verify {shlex.quote(str(dest))}"), soft_wrap=True)


@store.command("verify")
def store_verify(
    src: Annotated[Path, typer.Argument(help="A backup folder (from assay store backup).")],
) -> None:
    """Check that a backup is whole, without restoring it.

    Every file's size and SHA-256, SQLite's integrity check on the database, and every result
    file it refers to present. Exit code 1, naming each problem, when it is not."""
    from assay.jobs.store_backup import verify_backup

    try:
        summary, _ = verify_backup(src)
    except AssayError as exc:
        raise _failed(exc) from exc
    taken = summary.created_at.strftime("%Y-%m-%d %H:%M:%S %Z")
    out.print(Text(f"{src} is a whole backup, taken {taken}: {_describe(summary)}."),
              soft_wrap=True)  # fmt: skip
    _warn_missing(summary, "its home")


@store.command("restore")
def store_restore(
    ctx: typer.Context,
    src: Annotated[Path, typer.Argument(help="A backup folder (from assay store backup).")],
    home: HomeOption = None,
) -> None:
    """Restore a backup into home; the server on home must be stopped.

    The store and results that were there are moved aside, not deleted. A backup that is not
    whole, or a store still in use, is refused with exit code 1, and home is left as it was."""
    from assay.jobs.store_restore import restore

    settings = settings_of(ctx, home)
    try:
        database, results = _sqlite_files(settings)
        restored = restore(src, store=database, results=results)
    except AssayError as exc:
        raise _failed(exc, settings.home) from exc
    summary = restored.summary
    taken = summary.created_at.strftime("%Y-%m-%d %H:%M:%S %Z")
    out.print(Text(f"Restored {src} (taken {taken}) into {settings.home}: {_describe(summary)}."),
              soft_wrap=True)  # fmt: skip
    if restored.set_aside is not None:
        out.print(Text(f"What was there is now in {restored.set_aside}: delete it once the "
                       "restored server works."), soft_wrap=True)  # fmt: skip
    _warn_missing(summary, "its home")
    hours = (datetime.now(UTC) - summary.created_at).total_seconds() / 3600
    if hours > settings.result_retention_hours:
        err.print(
            Text(f"note: this backup is {hours:.0f} hours old. Jobs older than "
                 f"result_retention_hours ({settings.result_retention_hours:g}) are pruned, with "
                 "their results, when the server starts; keys and users stay.", style="yellow"),
            soft_wrap=True,
        )  # fmt: skip
