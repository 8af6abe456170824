"""Backups of the SQLite job store, taken while the server runs, and their verification.

A backup is a folder: ``assay.sqlite`` (a snapshot made with SQLite's online backup API),
``results/`` (the result files that snapshot refers to) and ``assay-backup.json`` (a
manifest with each file's size and SHA-256, and what the store held). It is written under a
temporary name and renamed when whole, so a folder with the backup's name is always complete.

Why snapshot first, then copy result files, is consistent: the runner writes a result whole
under a temporary name and renames it before any job or cache row refers to it; the file
never changes afterwards, and it is deleted only once no row refers to it (prune). So every
file the snapshot refers to existed, whole, when the snapshot was taken. Copied afterwards,
such a file is either still there and whole, or was pruned meanwhile: then the backup takes a
new snapshot, which no longer refers to it. Files the snapshot does not refer to (a result
still being written, or one pruned just before) are left out: nothing in the backup reaches
them. The other order (files, then database) could miss a result a job recorded in between.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assay import __version__
from assay.errors import BackupError, BackupInvalid

MANIFEST = "assay-backup.json"
STORE_FILE = "assay.sqlite"
RESULTS = "results"
FORMAT = "assay-sqlite-store-backup"
VERSION = 1
# A result pruned between the snapshot and its copy costs one more snapshot; a file still
# missing from the next snapshot's copy is missing from the live home too (recorded as such).
_ATTEMPTS = 5
_CHUNK = 1024 * 1024
# what the summary counts, by table (ai_jobs exists once a server has run on the store)
_COUNTED = ("jobs", "api_keys", "users", "ai_jobs")


@dataclass(frozen=True, slots=True)
class FileEntry:
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup holds, as its manifest says (and verification confirmed)."""

    path: Path
    created_at: datetime
    counts: dict[str, int]
    result_files: int
    result_bytes: int
    #: result files the store referred to that were already gone from the live home
    missing_results: tuple[str, ...]


def back_up(store: Path, results: Path, dest: Path) -> BackupSummary:
    """Back up the store file ``store`` and the result files in ``results`` to the new folder
    ``dest``, while a server may be using both. Nothing is left at ``dest`` on failure."""
    if not store.is_file():
        raise BackupError(
            f"There is no job store at {store}: nothing to back up (is --home the server's "
            "home folder?)"
        )
    _check_destination(dest)
    staging = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        with _writing(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging.mkdir(mode=0o700)  # token hashes and query results: for the operator only
            (staging / RESULTS).mkdir(mode=0o700)
            manifest = _take(store, results, staging)
            _write_manifest(staging / MANIFEST, manifest)
            make_durable()
            os.replace(staging, dest)  # onto an empty folder too
            fsync_folder(dest.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _summary(dest, manifest)


def _check_destination(dest: Path) -> None:
    if dest.is_dir() and not any(dest.iterdir()):
        return
    if dest.exists():
        raise BackupError(
            f"{dest} already exists: give a new folder (a backup never writes over another, "
            "or over anything else)"
        )


@contextmanager
def _writing(dest: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise BackupError(f"Cannot write the backup to {dest}: {reason}") from exc


def _take(store: Path, results: Path, staging: Path) -> dict[str, Any]:
    """Snapshot, then copy what the snapshot refers to; again if a file was pruned meanwhile."""
    copied: dict[str, FileEntry] = {}
    suspects: set[str] = set()
    missing: set[str] = set()
    for _ in range(_ATTEMPTS):
        _snapshot(store, staging / STORE_FILE)
        referenced = referenced_results(staging / STORE_FILE)
        for name in set(copied) - referenced:  # kept exact: only what the snapshot reaches
            (staging / RESULTS / name).unlink()
            del copied[name]
        missing = set()
        for name in sorted(referenced - set(copied)):
            entry = copy_hashed(results / name, staging / RESULTS / name)
            if entry is None:
                missing.add(name)
            else:
                copied[name] = entry
        if missing <= suspects:  # none, or missing from two snapshots in a row: lost live
            break
        suspects |= missing
    return {
        "format": FORMAT,
        "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "assay_version": __version__,
        "source": {"store": str(store.resolve()), "results": str(results.resolve())},
        "store": _entry_json(_hash_file(staging / STORE_FILE)),
        "results": {name: _entry_json(copied[name]) for name in sorted(copied)},
        "missing_results": sorted(missing),
        "counts": counts(staging / STORE_FILE),
    }


def _snapshot(store: Path, target: Path) -> None:
    """The store as of one moment, through SQLite's online backup API: one step, so one read
    transaction, which in WAL mode never blocks the server's writes. The copy is made
    self-contained (rollback journal, no -wal file) and checked whole."""
    target.unlink(missing_ok=True)
    try:
        # mode=rw: a store that vanished is an error, never an empty new file
        source = sqlite3.connect(f"{store.resolve().as_uri()}?mode=rw", uri=True)
        with closing(source), closing(sqlite3.connect(target, isolation_level=None)) as copy:
            source.execute("PRAGMA busy_timeout=5000")
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            problems = integrity_problems(copy)
    except sqlite3.Error as exc:
        raise BackupError(f"Cannot back up the job store {store}: SQLite says: {exc}") from exc
    if problems:
        raise BackupError(
            f"The job store {store} fails SQLite's integrity check ({'; '.join(problems)}): a "
            "backup of it would be damaged too. Restore the latest good backup (see "
            "docs/operations.md)."
        )


def integrity_problems(db: sqlite3.Connection) -> list[str]:
    """What ``PRAGMA integrity_check`` finds (the thorough check: it also compares indexes
    with their tables), at most a few; empty when the database is sound."""
    try:
        found = [str(row[0]) for row in db.execute("PRAGMA integrity_check(5)")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if found == ["ok"] else [" ".join(p.split()) for p in found]


def referenced_results(db_path: Path) -> set[str]:
    """The result files a job or a cache entry of this store file refers to."""
    with closing(_read_only(db_path)) as db:
        rows = db.execute(
            "SELECT result_file FROM jobs WHERE result_file IS NOT NULL "
            "UNION SELECT result_file FROM result_cache"
        ).fetchall()
    names = {str(r[0]) for r in rows}
    for name in names:
        check_result_name(name)
    return names


def check_result_name(name: str) -> None:
    """A result file's name is a plain name inside the results folder: a name that would
    reach outside it (``../x``, ``/etc/x``) is refused, never followed."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise BackupInvalid(f"A result file name that is not a plain file name: {name!r}")


def counts(db_path: Path) -> dict[str, int]:
    with closing(_read_only(db_path)) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return {
            t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) if t in tables else 0
            for t in _COUNTED
        }


def _read_only(db_path: Path) -> sqlite3.Connection:
    # immutable: a backup's file is read as it is, and no -wal or -shm file is made beside it
    return sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)


def copy_hashed(source: Path, target: Path) -> FileEntry | None:
    """Copy ``source`` to the new file ``target``: its size and SHA-256, or None when
    ``source`` does not exist. (Once open, the whole file is read even if it is deleted
    meanwhile.) Not synced to disk one by one: see ``make_durable``."""
    try:
        reader = source.open("rb")
    except FileNotFoundError:
        return None
    digest, size = hashlib.sha256(), 0
    with reader, target.open("xb") as out:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return FileEntry(size, digest.hexdigest())


def _hash_file(path: Path) -> FileEntry:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(size, digest.hexdigest())


def _entry_json(entry: FileEntry) -> dict[str, Any]:
    return {"bytes": entry.bytes, "sha256": entry.sha256}


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    with path.open("x") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


def make_durable() -> None:
    """Everything written so far on disk, before the rename that makes it count: one
    ``sync`` instead of an fsync per file (those took 23 s of 29 to back up 10,000 results)."""
    os.sync()


def fsync_folder(folder: Path) -> None:
    """Make a folder's entries (a rename) durable, not only the files' data."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- verification


def verify_backup(src: Path) -> tuple[BackupSummary, dict[str, Any]]:
    """Check that ``src`` is a whole backup: its manifest, every file's size and checksum,
    SQLite's integrity check on the store, and every result the store refers to present.
    ``BackupInvalid`` names every problem found; the summary and the manifest otherwise."""
    manifest = read_manifest(src)
    problems: list[str] = []
    files = {STORE_FILE: manifest["store"]}
    files.update({f"{RESULTS}/{name}": e for name, e in manifest["results"].items()})
    for relative, expected in files.items():
        path = src / relative
        if not path.is_file():
            problems.append(f"{relative} is missing")
            continue
        found = _hash_file(path)
        if found.bytes != expected["bytes"]:
            problems.append(f"{relative} has {found.bytes} bytes, not {expected['bytes']}")
        elif found.sha256 != expected["sha256"]:
            problems.append(f"{relative} does not match its checksum (changed or damaged)")
    if not problems:  # the file is whole: SQLite may open it
        try:
            with closing(_read_only(src / STORE_FILE)) as db:
                problems += [f"{STORE_FILE}: {p}" for p in integrity_problems(db)]
            if not problems:
                known = set(manifest["results"]) | set(manifest["missing_results"])
                lacking = sorted(referenced_results(src / STORE_FILE) - known)
                problems += [f"{RESULTS}/{name} (the store refers to it) is missing"
                             for name in lacking]  # fmt: skip
        except sqlite3.Error as exc:
            problems.append(f"{STORE_FILE}: SQLite says: {exc}")
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise BackupInvalid(f"The backup {src} is damaged or incomplete:\n{listed}{more}")
    return _summary(src, manifest), manifest


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of the backup folder ``src``, its shape checked (not yet its files)."""
    if not src.exists():
        raise BackupInvalid(f"There is no backup at {src}")
    if not src.is_dir():
        raise BackupInvalid(
            f"{src} is a file, not a backup: a backup is the folder `assay store backup` "
            f"writes, with {MANIFEST} in it"
        )
    path = src / MANIFEST
    if not path.is_file():
        raise BackupInvalid(
            f"{src} is not a backup of Assay's job store: it has no {MANIFEST} (a backup is "
            "the folder `assay store backup` writes)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupInvalid(f"{path} cannot be read as a backup manifest: {exc}") from exc
    _check_shape(path, manifest)
    return manifest  # type: ignore[no-any-return]


def _check_shape(path: Path, manifest: Any) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupInvalid(f"{path} is not the manifest of a backup of Assay's job store")
    version = manifest.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise BackupInvalid(
            f"{path} is of backup format version {version!r}, made by a newer Assay: this one "
            f"reads version {VERSION}"
        )
    try:
        entries = [manifest["store"], *manifest["results"].values()]
        for name in [*manifest["results"], *manifest["missing_results"]]:
            check_result_name(name)
        for entry in entries:
            if not isinstance(entry["bytes"], int) or not isinstance(entry["sha256"], str):
                raise TypeError("a file entry needs bytes and sha256")
        datetime.fromisoformat(manifest["created_at"])
        {str(k): int(v) for k, v in manifest["counts"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BackupInvalid(f"{path} is an incomplete backup manifest ({exc!r})") from exc


def _summary(path: Path, manifest: dict[str, Any]) -> BackupSummary:
    results = manifest["results"]
    return BackupSummary(
        path=path,
        created_at=datetime.fromisoformat(manifest["created_at"]),
        counts={str(k): int(v) for k, v in manifest["counts"].items()},
        result_files=len(results),
        result_bytes=sum(int(e["bytes"]) for e in results.values()),
        missing_results=tuple(manifest["missing_results"]),
    )
