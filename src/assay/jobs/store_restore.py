"""Restoring a backup of the SQLite job store (``store_backup``) into a home folder.

The order keeps every refusal harmless: the backup is verified whole first, then the home is
checked for a process holding its store open, then the backup is copied into a folder inside
the home (same disk, so the final moves are renames) and checked against its manifest again.
Only then is the store that was there moved aside, never deleted, and the copy moved in.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from assay.errors import BackupError, BackupInvalid, StoreInUse
from assay.jobs.store_backup import (
    RESULTS,
    STORE_FILE,
    BackupSummary,
    FileEntry,
    copy_hashed,
    fsync_folder,
    make_durable,
    verify_backup,
)

# SQLite's codes for "another connection holds a lock we need"
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# How long to wait for a lock before calling the store in use: long enough for a short
# command (`assay keys list`) to finish, far shorter than any server's life.
_LOCK_WAIT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Restored:
    summary: BackupSummary
    #: where the store (and results) that were in the home now are; None when there were none
    set_aside: Path | None


def restore(src: Path, *, store: Path, results: Path, now: datetime | None = None) -> Restored:
    """Make ``store`` and ``results`` the backup's. Refused, with nothing changed, when
    ``src`` is not a whole backup (``BackupInvalid``) or the store is open (``StoreInUse``)."""
    summary, manifest = verify_backup(src)
    ensure_not_in_use(store)
    home = store.parent
    staging = home / f".restore-{uuid.uuid4().hex[:12]}"
    try:
        home.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        (staging / RESULTS).mkdir()
        wanted = {STORE_FILE: manifest["store"]}
        wanted.update({f"{RESULTS}/{n}": e for n, e in manifest["results"].items()})
        for relative, entry in wanted.items():
            copied = copy_hashed(src / relative, staging / relative)
            if copied != FileEntry(entry["bytes"], entry["sha256"]):
                raise BackupInvalid(
                    f"The backup {src} changed while it was being restored ({relative}): "
                    "nothing was restored"
                )
        make_durable()  # the copy is on disk before it replaces anything
        ensure_not_in_use(store)  # again: the copy may have taken a while
        set_aside = _swap(staging, store, results, now or datetime.now(UTC))
        fsync_folder(home)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise BackupError(f"Cannot restore into {home}: {reason}; nothing was changed") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Restored(summary, set_aside)


def ensure_not_in_use(store: Path) -> None:
    """Raise ``StoreInUse`` when a process has the store open. Every connection to a WAL
    database holds a shared lock on it for as long as it is open, so an exclusive lock is
    refused while a server runs, even an idle one. A damaged store is not in use: a server
    does not start on one, and restoring is how it is mended."""
    if not store.exists():
        return
    try:
        db = sqlite3.connect(
            f"{store.resolve().as_uri()}?mode=rw",
            uri=True,
            timeout=_LOCK_WAIT_SECONDS,
            isolation_level=None,
        )
        with closing(db):
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("BEGIN EXCLUSIVE")
            db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _BUSY_CODES:
            raise StoreInUse(
                f"The job store {store} is in use: an `assay serve` (or another assay "
                "command) has it open. Stop it, then restore again; nothing was changed."
            ) from exc


def _swap(staging: Path, store: Path, results: Path, now: datetime) -> Path | None:
    """Move the old store (with its -wal and -shm files, which belong to it and must never
    meet the restored file) and results aside, and the restored ones in; undone on failure."""
    old = [p for p in (store, _beside(store, "-wal"), _beside(store, "-shm"), results)
           if p.exists()]  # fmt: skip
    aside = _new_folder(store.parent, f"before-restore-{now.strftime('%Y%m%dT%H%M%SZ')}")
    if old:
        aside.mkdir()
    moves = [(p, aside / p.name) for p in old]
    moves += [(staging / STORE_FILE, store), (staging / RESULTS, results)]
    done: list[tuple[Path, Path]] = []
    try:
        for source, target in moves:
            source.rename(target)
            done.append((source, target))
    except OSError:
        for source, target in reversed(done):
            target.rename(source)
        if old:
            aside.rmdir()
        raise
    return aside if old else None


def _new_folder(parent: Path, name: str) -> Path:
    """``parent/name``, or ``name-2``, ``name-3`` ... when a restore in the same second
    already set a store aside there."""
    path, n = parent / name, 1
    while path.exists():
        n += 1
        path = parent / f"{name}-{n}"
    return path


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)
