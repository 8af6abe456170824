"""The start-up check of the SQLite store file, for both stores that open it (jobs, AI jobs):
damage is refused with ``StoreDamaged``, never hidden or written over; a healthy, new or
just-created file opens; other failures to open stay plain ``ConfigError``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assay.ai.store import SQLiteAIStore
from assay.errors import ConfigError, StoreDamaged
from assay.jobs.model import ApiKey
from assay.jobs.sqlite import SQLiteJobStore

Opener = Callable[[Path], object]
OPENERS: dict[str, Opener] = {"jobs": SQLiteJobStore, "ai": SQLiteAIStore}


def made_store(path: Path) -> None:
    """A store with a key and enough rows to span many pages."""
    store = SQLiteJobStore(path)
    store.add_key(ApiKey(id="k1", kind="org", token_hash="h", prefix="p", user_id=None,
                         user_email=None, label=None, created_at=1.0))  # fmt: skip
    with store._lock:
        store._db.executemany(
            "INSERT INTO result_cache VALUES (?, 'f', ?, 1, 1, 1.0, 2.0)",
            [(f"key{i}", "x" * 500) for i in range(2000)],
        )
    store.close()


def close(store: object) -> None:
    assert isinstance(store, SQLiteJobStore | SQLiteAIStore)
    store.close()


@pytest.mark.parametrize("which", list(OPENERS))
def test_a_healthy_or_new_store_opens(tmp_path: Path, which: str) -> None:
    path = tmp_path / "assay.sqlite"
    close(OPENERS[which](path))  # new
    made_store(path)
    close(OPENERS[which](path))  # healthy, with data
    (tmp_path / "young.sqlite").touch()  # another process is making it right now
    close(OPENERS[which](tmp_path / "young.sqlite"))


@pytest.mark.parametrize("which", list(OPENERS))
def test_a_corrupted_page_is_refused_by_either_store(tmp_path: Path, which: str) -> None:
    path = tmp_path / "assay.sqlite"
    made_store(path)
    with open(path, "r+b") as f:
        f.seek(100 * 4096)
        f.write(b"\xff" * 4096)
    before = path.read_bytes()
    with pytest.raises(StoreDamaged) as caught:
        OPENERS[which](path)
    message = caught.value.message
    assert message.startswith(f"The job store {path} is damaged; SQLite says: ")
    assert "malformed" in message or "Page 101" in message
    assert (caught.value.code, caught.value.error_type) == ("store_damaged", "INTERNAL")
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()  # not even switched to WAL: nothing written


@pytest.mark.parametrize("which", list(OPENERS))
def test_an_emptied_store_is_refused(tmp_path: Path, which: str) -> None:
    path = tmp_path / "assay.sqlite"
    made_store(path)
    os.truncate(path, 0)
    old = time.time() - 60
    os.utime(path, (old, old))
    with pytest.raises(StoreDamaged, match=r"is damaged; it is empty \(0 bytes\)"):
        OPENERS[which](path)
    assert path.stat().st_size == 0


def test_a_store_that_cannot_be_opened_is_a_plain_config_error(tmp_path: Path) -> None:
    (tmp_path / "home").write_text("a file where the home folder should be")
    with pytest.raises(ConfigError) as caught:
        SQLiteJobStore(tmp_path / "home" / "assay.sqlite")
    assert not isinstance(caught.value, StoreDamaged)
    assert caught.value.message.startswith(f"Cannot open the job store {tmp_path / 'home'}")
