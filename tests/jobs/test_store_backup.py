"""Backing up and restoring the SQLite job store, on real store files: what a backup holds,
why its order is consistent (a result pruned mid-backup), and every refusal (not a backup, a
damaged or incomplete one, a store in use) leaving the home byte for byte as it was."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from assay.errors import BackupError, BackupInvalid, StoreInUse
from assay.jobs import store_backup
from assay.jobs.keys import create_key, hash_token, org_admin
from assay.jobs.model import CachedResult, Job
from assay.jobs.sqlite import SQLiteJobStore
from assay.jobs.store_backup import MANIFEST, back_up, verify_backup
from assay.jobs.store_restore import restore


def write_result(path: Path, values: list[int]) -> None:
    table = pa.table({"x": values})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def read_result(path: Path) -> list[int]:
    with pa.OSFile(str(path), "rb") as source:
        return [int(v) for v in pa.ipc.open_stream(source).read_all().column("x").to_pylist()]


def finished_job(store: SQLiteJobStore, results: Path, job_id: str, values: list[int]) -> str:
    """A job that ran and kept its result (cached too), as the runner leaves one."""
    name = f"{job_id}.arrows"
    write_result(results / name, values)
    now = time.time()
    store.add_jobs([Job(id=job_id, status="EXECUTING", client_result_id=f"c-{job_id}",
                        model_id="m", request={"query": {}}, created_at=now)])  # fmt: skip
    cached = CachedResult(f"k-{job_id}", name, {}, len(values), 1, now, now + 3600)
    assert store.finish(job_id, status="COMPLETE", at=now, result_file=name, cached=cached)
    return name


class Home:
    """A home folder with a job store (a key, jobs with results) as a server leaves it."""

    def __init__(self, root: Path, values: int = 1) -> None:
        self.path = root
        self.store_file = root / "assay.sqlite"
        self.results = root / "results"
        self.results.mkdir(parents=True)
        store = SQLiteJobStore(self.store_file)
        try:
            self.token = create_key(store, "org", user=org_admin(store), label=root.name)[1]
            self.names = [finished_job(store, self.results, f"job{i}", [i * values, i])
                          for i in range(3)]  # fmt: skip
        finally:
            store.close()

    def files(self) -> dict[str, bytes]:
        """Every file under the home, by path: to show a refusal changed nothing."""
        return {str(p.relative_to(self.path)): p.read_bytes()
                for p in sorted(self.path.rglob("*")) if p.is_file()}  # fmt: skip

    def knows(self, token: str) -> bool:
        store = SQLiteJobStore(self.store_file)
        try:
            return store.key_by_hash(hash_token(token)) is not None
        finally:
            store.close()


@pytest.fixture
def live(tmp_path: Path) -> Home:
    return Home(tmp_path / "live")


@pytest.fixture
def backup(live: Home, tmp_path: Path) -> Path:
    dest = tmp_path / "backup"
    back_up(live.store_file, live.results, dest)
    return dest


@pytest.fixture
def target(tmp_path: Path) -> Home:
    """Another home, with a store of its own, to restore into."""
    return Home(tmp_path / "target", values=100)


def test_a_backup_holds_a_snapshot_and_the_results_it_refers_to(live: Home, tmp_path: Path) -> None:
    write_result(live.results / "orphan.arrows", [9])  # referred to by nothing (pruned)
    write_result(live.results / "job9.arrows.tmp", [9])  # a result still being written
    summary = back_up(live.store_file, live.results, tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b" / "results").iterdir()) == sorted(live.names)
    assert summary.counts == {"jobs": 3, "api_keys": 1, "users": 1, "ai_jobs": 0}
    assert (summary.result_files, summary.missing_results) == (3, ())
    assert not Path(f"{tmp_path / 'b' / 'assay.sqlite'}-wal").exists(), "one self-contained file"
    assert verify_backup(tmp_path / "b")[0].counts == summary.counts
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_a_result_pruned_during_the_backup_costs_a_new_snapshot(
    live: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server prunes job0 (its row, then its file) after the snapshot was taken and
    before its file is copied: the backup must not keep a row whose result it lacks."""
    real = store_backup.copy_hashed
    pruned: list[str] = []

    def copy_racing_a_prune(source: Path, target: Path) -> store_backup.FileEntry | None:
        if source.name == live.names[0] and not pruned:
            with sqlite3.connect(live.store_file) as db:
                db.execute("DELETE FROM jobs WHERE id = 'job0'")
                db.execute("DELETE FROM result_cache WHERE key = 'k-job0'")
            source.unlink()
            pruned.append(source.name)
        return real(source, target)

    monkeypatch.setattr(store_backup, "copy_hashed", copy_racing_a_prune)
    summary = back_up(live.store_file, live.results, tmp_path / "b")
    assert pruned, "the race happened"
    assert summary.counts["jobs"] == 2 and summary.missing_results == ()
    assert sorted(p.name for p in (tmp_path / "b" / "results").iterdir()) == live.names[1:]
    verify_backup(tmp_path / "b")


def test_a_result_the_live_home_already_lacks_is_recorded(live: Home, tmp_path: Path) -> None:
    (live.results / live.names[1]).unlink()  # an operator deleted it: the job answers 410
    summary = back_up(live.store_file, live.results, tmp_path / "b")
    assert summary.missing_results == (live.names[1],)
    assert summary.counts["jobs"] == 3
    assert verify_backup(tmp_path / "b")[0].missing_results == (live.names[1],)


def test_a_backup_never_writes_over_a_folder(live: Home, tmp_path: Path) -> None:
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(BackupError, match="already exists: give a new folder"):
        back_up(live.store_file, live.results, dest)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    (dest / "notes.txt").unlink()
    back_up(live.store_file, live.results, dest)  # an empty folder will do
    assert (dest / MANIFEST).is_file()


def test_a_damaged_store_is_not_backed_up(live: Home, tmp_path: Path) -> None:
    with open(live.store_file, "r+b") as f:
        f.seek(4096)
        f.write(os.urandom(4096))
    with pytest.raises(BackupError, match=r"job store .* (integrity|SQLite says)"):
        back_up(live.store_file, live.results, tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live"], "nothing left behind"


def test_no_store_no_backup(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="There is no job store at"):
        back_up(tmp_path / "assay.sqlite", tmp_path / "results", tmp_path / "b")
    assert not (tmp_path / "assay.sqlite").exists(), "not created by asking"


def test_a_restore_brings_back_the_store_and_sets_the_old_one_aside(
    backup: Path, live: Home, target: Home
) -> None:
    before = target.files()
    restored = restore(backup, store=target.store_file, results=target.results)
    assert target.knows(live.token) and not target.knows(target.token)
    assert [read_result(target.results / n) for n in live.names] == [[0, 0], [1, 1], [2, 2]]
    aside = restored.set_aside
    assert aside is not None and aside.parent == target.path
    kept = {k.removeprefix(f"{aside.name}/"): v for k, v in target.files().items()
            if k.startswith(aside.name)}  # fmt: skip
    assert kept == before, "the store that was there is kept whole"
    assert [p.name for p in target.path.iterdir() if p.name.startswith(".restore")] == []


def test_a_restore_into_a_new_home(backup: Path, live: Home, tmp_path: Path) -> None:
    home = tmp_path / "fresh" / "home"
    restored = restore(backup, store=home / "assay.sqlite", results=home / "results")
    assert restored.set_aside is None
    store = SQLiteJobStore(home / "assay.sqlite")  # as the server opens it (quick_check, WAL)
    try:
        assert store.key_by_hash(hash_token(live.token)) is not None
        assert [j.result_file for j in store.get_jobs(["job0", "job1", "job2"]).values()] != []
    finally:
        store.close()


def test_a_restore_mends_a_damaged_store(backup: Path, live: Home, target: Home) -> None:
    """A server refuses a damaged store and says to restore a backup: that must work."""
    target.store_file.write_bytes(os.urandom(8192))
    restored = restore(backup, store=target.store_file, results=target.results)
    assert target.knows(live.token)
    assert restored.set_aside is not None and (restored.set_aside / "assay.sqlite").exists()


def test_a_restore_refuses_a_store_in_use(backup: Path, target: Home) -> None:
    store = SQLiteJobStore(target.store_file)  # open as a server holds it, idle
    try:
        before = target.files()
        with pytest.raises(StoreInUse, match="is in use: an `assay serve`"):
            restore(backup, store=target.store_file, results=target.results)
        assert target.files() == before
        assert store.key_by_hash(hash_token(target.token)) is not None, "still serving"
    finally:
        store.close()


def _flip_a_byte(backup: Path) -> None:
    path = backup / "assay.sqlite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_manifest(change: Callable[[dict[str, object]], None]) -> Callable[[Path], None]:
    def edit(backup: Path) -> None:
        manifest = json.loads((backup / MANIFEST).read_text())
        change(manifest)
        (backup / MANIFEST).write_text(json.dumps(manifest))

    return edit


def _write_manifest(text: str) -> Callable[[Path], None]:
    def write(backup: Path) -> None:
        (backup / MANIFEST).write_text(text)

    return write


def _first_result(backup: Path) -> Path:
    return sorted((backup / "results").iterdir())[0]


BAD_BACKUPS: dict[str, tuple[Callable[[Path], Path | None], str]] = {
    "missing": (lambda b: b.with_name("nowhere"), "There is no backup at"),
    "a store file": (lambda b: b / "assay.sqlite", "is a file, not a backup"),
    "no manifest": (lambda b: (b / MANIFEST).unlink(), f"it has no {MANIFEST}"),
    "garbage manifest": (_write_manifest("{not json"), "cannot be read as a backup manifest"),
    "another json": (_write_manifest('{"format": "x"}'), "is not the manifest of a backup"),
    "a newer format": (_edit_manifest(lambda m: m.update(version=99)), "made by a newer Assay"),
    "a corrupted database": (_flip_a_byte, "assay.sqlite does not match its checksum"),
    "a result file gone": (lambda b: _first_result(b).unlink(), r"results/job0.arrows is missing"),
    "a truncated result": (
        lambda b: os.truncate(_first_result(b), 10),
        r"results/job0.arrows has 10 bytes, not",
    ),
    "a name reaching outside": (
        _edit_manifest(lambda m: m.update(missing_results=["../../etc/passwd"])),
        "not a plain file name",
    ),
    "a result left out of the manifest": (
        _edit_manifest(lambda m: m["results"].pop("job2.arrows")),  # type: ignore[attr-defined]
        r"results/job2.arrows \(the store refers to it\) is missing",
    ),
}


@pytest.mark.parametrize("damage", BAD_BACKUPS, ids=list(BAD_BACKUPS))
def test_a_restore_refuses_what_is_not_a_whole_backup(
    damage: str, backup: Path, target: Home
) -> None:
    spoil, message = BAD_BACKUPS[damage]
    src = spoil(backup) or backup
    before = target.files()
    with pytest.raises(BackupInvalid, match=message):
        restore(src, store=target.store_file, results=target.results)
    assert target.files() == before, "the home is left exactly as it was"
    assert target.knows(target.token)
    if damage not in ("missing", "a store file"):
        with pytest.raises(BackupInvalid, match=message):
            verify_backup(src)
