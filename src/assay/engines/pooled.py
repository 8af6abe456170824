"""What the client-server engines (PostgreSQL, MySQL/MariaDB) share: a small pool of idle
connections, and the life of one query on a borrowed connection with a cancel that cannot be
lost.

A connection runs one query at a time; concurrency comes from the job runner's worker threads
each borrowing their own. A connection goes back to the pool only after a query that ended
cleanly and was never cancelled: after an error its state is unknown, and a cancel may still
be in flight towards it, which must never hit the next query run on it.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import pyarrow as pa

from assay.errors import EngineError, QueryCancelled

logger = logging.getLogger(__name__)

C = TypeVar("C")


class ConnectionPool(Generic[C]):
    """Idle connections kept for reuse (the most recently used first: it is the warmest).

    Connecting is lazy: the pool opens nothing until a query asks, so a server whose database
    is down still starts. A connection idle for longer than ``check_after_s`` is pinged before
    reuse, so a database restart costs a reconnect instead of a failed query.
    """

    def __init__(
        self,
        connect: Callable[[], C],
        close: Callable[[C], None],
        ping: Callable[[C], bool],
        *,
        max_idle: int = 4,
        check_after_s: float = 10.0,
    ) -> None:
        self._connect = connect
        self._close = close
        self._ping = ping
        self._max_idle = max_idle
        self._check_after = check_after_s
        self._idle: list[tuple[C, float]] = []
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self) -> C:
        while True:
            with self._lock:
                idle = self._idle.pop() if self._idle else None
            if idle is None:
                return self._connect()
            conn, since = idle
            if time.monotonic() - since < self._check_after or self._ping(conn):
                return conn
            self.discard(conn)

    def release(self, conn: C) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append((conn, time.monotonic()))
                return
        self.discard(conn)

    def discard(self, conn: C) -> None:
        try:
            self._close(conn)
        except Exception:  # a dead connection may fail to close; it is gone either way
            logger.debug("closing a discarded connection failed", exc_info=True)

    def close(self) -> None:
        """Close the idle connections; connections in use are closed when their query ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            self.discard(conn)


class PooledQuery(ABC, Generic[C]):
    """One query on a connection borrowed from a pool: the engine-independent half.

    The cancel race: ``cancel`` marks the query cancelled and ``reader`` publishes its
    connection under one lock, so either ``reader`` sees the cancel before it runs anything,
    or ``cancel`` sees the connection and interrupts it. An interrupt that reaches the server
    before the query does is lost, so it is repeated until the query has stopped. Interrupts
    are sent under the lock and the query marks itself finished under it too, so no interrupt
    touches a cursor that is being closed; and a cancelled query's connection is never pooled,
    so a late interrupt cannot stop somebody else's query.
    """

    # How long a cancel keeps interrupting a query that does not stop, and how often.
    CANCEL_PATIENCE_S = 30.0
    CANCEL_EVERY_S = 0.05

    def __init__(self, pool: ConnectionPool[C], sql: str, params: Sequence[Any]) -> None:
        self._pool = pool
        self._sql = sql
        self._params = list(params)
        self._lock = threading.Lock()
        self._stopped = threading.Event()  # wakes the interrupt loop the moment the query ends
        self._cancelled = False
        self._finished = False
        self._conn: C | None = None

    # ------------------------------------------------------------------ engine hooks

    @abstractmethod
    def _open(self, conn: C) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """Run the query: its schema and its batches (the iterator may raise driver errors)."""

    @abstractmethod
    def _interrupt(self, conn: C) -> None:
        """Ask the server to stop the query running on ``conn`` (called under the lock)."""

    def _interrupted(self) -> None:
        """The interrupts are over (the query stopped or patience ran out): free their means."""

    @abstractmethod
    def _end(self, conn: C, clean: bool) -> None:
        """Release the query's resources; pool ``conn`` when ``clean``, else discard it."""

    @abstractmethod
    def _translate(self, exc: Exception) -> EngineError:
        """The Assay error for a driver error of a query that was not cancelled."""

    # ------------------------------------------------------------------ the query's life

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            running = self._conn is not None and not self._finished
        if running:
            threading.Thread(target=self._interrupt_until_stopped, daemon=True).start()

    def _interrupt_until_stopped(self) -> None:
        deadline = time.monotonic() + self.CANCEL_PATIENCE_S
        try:
            while time.monotonic() < deadline:
                with self._lock:
                    if self._finished or self._conn is None:
                        return
                    try:
                        self._interrupt(self._conn)
                    except Exception:  # e.g. the server is gone: keep trying until patience ends
                        logger.warning("interrupting a query failed", exc_info=True)
                if self._stopped.wait(self.CANCEL_EVERY_S):
                    return
        finally:
            self._interrupted()

    def reader(self) -> pa.RecordBatchReader:
        with self._lock:
            if self._cancelled:
                self._finished = True
                raise QueryCancelled("The query was cancelled before it started")
        conn = self._pool.acquire()  # raises EngineUnavailable
        with self._lock:
            if self._cancelled:  # while connecting: the connection is untouched, keep it
                self._finished = True
                self._pool.release(conn)
                raise QueryCancelled("The query was cancelled before it started")
            self._conn = conn
        try:
            schema, batches = self._open(conn)
        except Exception as exc:
            self._finish(clean=False)
            raise self._error(exc) from exc
        return pa.RecordBatchReader.from_batches(schema, _Batches(self, self._guarded(batches)))

    def _guarded(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        clean = False
        try:
            yield from batches
            if self._cancelled:  # some servers end an interrupted query as if it succeeded
                raise QueryCancelled("The query was cancelled")
            clean = True
        except GeneratorExit:  # the reader was dropped before the end: the connection is busy
            raise
        except Exception as exc:
            raise self._error(exc) from exc
        finally:
            self._finish(clean)

    def _finish(self, clean: bool) -> None:
        with self._lock:
            self._finished = True
            conn, self._conn = self._conn, None
            clean = clean and not self._cancelled
        self._stopped.set()
        if conn is not None:
            try:
                self._end(conn, clean)
            except Exception:
                logger.debug("releasing a query's connection failed", exc_info=True)
                self._pool.discard(conn)

    def _error(self, exc: Exception) -> EngineError:
        if isinstance(exc, EngineError):
            return exc
        if self._cancelled:
            return QueryCancelled("The query was cancelled")
        return self._translate(exc)


class _Batches:
    """A query's batches, and the end of its life when its reader is dropped unread: a
    generator that never started runs no ``finally`` when it is closed, so a reader given
    up before its first batch (an error beside it, a cancel) would otherwise keep its cursor
    and its connection out of the pool."""

    def __init__(self, query: PooledQuery[Any], batches: Iterator[pa.RecordBatch]) -> None:
        self._query = query
        self._batches = batches

    def __iter__(self) -> _Batches:
        return self

    def __next__(self) -> pa.RecordBatch:
        return next(self._batches)

    def __del__(self) -> None:
        if not self._query._finished:
            self._query._finish(clean=False)
