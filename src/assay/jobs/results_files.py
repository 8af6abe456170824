"""The job runner's result files: the folder they live in, and writing one job's result
within the size cap, so that a full disk or an oversized result fails that job clearly and
leaves nothing behind (no partial file, no query still running in the engine).

A result is first written to ``<name>.tmp`` and renamed when whole (``write_stream``), so a
file with a result's name is always complete; only a whole result is recorded in the cache.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from assay.engines.base import RunningQuery
from assay.errors import ConfigError, ResultsUnwritable, ResultTooLarge
from assay.results.arrow import Written, write_stream


def prepare_results_dir(folder: Path) -> None:
    """Create the results folder at start-up; failing, a ``ConfigError`` naming the path and
    the reason (a file in the way, a read-only disk, no permission): without the folder no
    query could keep its result. (A folder that exists but cannot be written, e.g. a full
    disk, is not refused: space may come back, and each job then says what is wrong.)"""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(
            f"Cannot create the results folder {folder}: {reason}. Make sure its parent is "
            "writable by the server's user (or set home to a folder that is)."
        ) from exc


def checked_cap(max_result_bytes: int | None) -> int | None:
    """The result size cap, refusing a value that would fail every query."""
    if max_result_bytes is not None and max_result_bytes < 1:
        raise ConfigError(
            f"Setting max_result_bytes must be a positive number of bytes, not {max_result_bytes}"
        )
    return max_result_bytes


def discard(path: Path) -> None:
    """Remove a failed job's result file, if any. Never raises: the job must still end, even
    when the folder is gone or read-only (then there is nothing to remove anyway)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def write_result(
    handle: RunningQuery,
    path: Path,
    columns: Sequence[str] | None,
    limit: int | None,
    max_bytes: int | None,
    limit_per: str | None = None,
    compression: str | None = None,
) -> Written:
    """Read the running query into ``path``. When writing stops early (the result passed
    ``max_bytes``, or the folder cannot take it), the engine's query is cancelled at once: it
    would otherwise go on computing rows no one reads, holding a worker's connection. So is a
    query the limit cut whose SQL has no LIMIT of its own (raw SQL, ``columns`` None)."""
    try:
        written = write_stream(
            handle.reader(),
            path,
            columns,
            limit,
            max_bytes=max_bytes,
            limit_per=limit_per,
            compression=compression,
        )
    except (ResultTooLarge, ResultsUnwritable):
        handle.cancel()
        raise
    if written.limit_reached and columns is None:
        handle.cancel()
    return written
