"""Checkpoints of the SQLite store's write-ahead log, made by a thread of their own.

Left to itself, SQLite checkpoints inside whichever commit finds the log past 1,000 pages:
that commit then copies the log into the database file and waits for two fsyncs (10 ms and
more on this project's machine), and a request waits with it, every few dozen jobs. The
log alone already keeps every commit across a crash of the process (``synchronous=NORMAL``),
so nothing a client was told depends on the checkpoint: the store's connections turn it off
(``wal_autocheckpoint=0``) and this thread makes it, off every request's path.

A passive checkpoint copies what no reader still needs and waits for no one (no request
ever waits for it); once all of the log is in the database, the next commit starts it again
from its beginning. A process that closes the store's last connection checkpoints as it
closes (SQLite does)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger(__name__)
#: how often the log is checkpointed (it then holds about this long's commits)
CHECKPOINT_SECONDS = 1.0


class WalCheckpointer:
    """Checkpoints ``path``'s log every ``interval`` seconds on a connection of its own, until
    ``close``."""

    def __init__(self, path: Path, interval: float = CHECKPOINT_SECONDS) -> None:
        # A connection of its own: the store's is shared under a lock that requests take.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="assay-wal-checkpoints", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:  # busy or briefly unreadable: the next round retries
                logger.warning("checkpointing the job store's log failed: %s", exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._db.close()
