"""DuckDB, the embedded default engine: one connection, a cursor per query.

Cursors share the database but run independently, so concurrent queries do not serialise;
``cursor.interrupt()`` cancels a running query from another thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from assay.errors import EngineError, EngineUnavailable, QueryCancelled

BATCH_ROWS = 64 * 1024


class DuckDBEngine:
    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, path: Path | str, *, read_only: bool = True, threads: int = 0) -> None:
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        try:
            self._conn = duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            raise EngineUnavailable(f"Cannot open DuckDB database {path}: {exc}") from exc
        self.path = Path(path)
        self._config = config
        self._sandbox: duckdb.DuckDBPyConnection | None = None
        self._sandbox_lock = threading.Lock()

    def start(self, sql: str, params: Sequence[Any] = ()) -> _DuckDBQuery:
        return _DuckDBQuery(self._conn.cursor(), sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self.start(sql, params).reader().read_all()

    def start_read_only(self, sql: str) -> _DuckDBQuery:
        """Run users' raw SQL in a sandbox: a database of its own that attaches this file
        read-only and has external access (files, URLs, extensions) switched off and locked,
        so no statement can write or reach outside, whatever got past the statement check.
        The engine's own connection keeps its settings: models may read files."""
        cursor = self._sandboxed().cursor()
        try:  # the default database is each cursor's own setting
            cursor.execute(f"USE {duckdb_identifier(self.path.stem)}")
        except duckdb.Error as exc:
            cursor.close()
            raise EngineError(f"DuckDB: cannot use {self.path} for raw SQL: {exc}") from exc
        return _DuckDBQuery(cursor, sql, ())

    def _sandboxed(self) -> duckdb.DuckDBPyConnection:
        with self._sandbox_lock:
            if self._sandbox is None:
                self._sandbox = _sandbox(self.path, self._config)
            return self._sandbox

    def catalog(self) -> dict[str, dict[str, str]]:
        rows = self.execute(
            "SELECT table_schema, table_name, column_name, data_type "
            "FROM information_schema.columns ORDER BY table_schema, table_name, ordinal_position"
        ).to_pylist()
        out: dict[str, dict[str, str]] = {}
        for row in rows:
            schema, table = row["table_schema"].lower(), row["table_name"].lower()
            column, kind = row["column_name"].lower(), row["data_type"]
            out.setdefault(f"{schema}.{table}", {})[column] = kind
            if schema == "main":  # DuckDB's default schema: reachable unqualified
                out.setdefault(table, {})[column] = kind
        return out

    def close(self) -> None:
        with self._sandbox_lock:
            if self._sandbox is not None:
                self._sandbox.close()
        self._conn.close()


def _sandbox(path: Path, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """An in-memory database with ``path`` attached read-only under its usual name (so that
    ``name.main.table`` resolves as on the engine's connection) and made the default."""
    conn = duckdb.connect(":memory:", config=config)
    try:
        name = duckdb_identifier(path.stem)
        conn.execute(f"ATTACH {duckdb_string(str(path))} AS {name} (READ_ONLY)")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        conn.close()
        raise EngineError(f"DuckDB: cannot open {path} read-only for raw SQL: {exc}") from exc
    return conn


def duckdb_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _DuckDBQuery:
    # How long a cancel keeps interrupting a query that was handed out but is never read.
    CANCEL_PATIENCE_S = 30.0

    def __init__(self, cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> None:
        self._cursor = cursor
        self._sql = sql
        self._params = list(params)
        self._cancelled = threading.Event()
        self._started = threading.Event()
        self._finished = threading.Event()

    def cancel(self) -> None:
        """Stop the query, from any thread.

        ``reader`` marks the query started *before* it checks for a cancel, and ``cancel``
        marks the cancel *before* it checks for a start, so one of them always sees the other.
        A DuckDB interrupt that arrives just before execution begins is lost, so once started
        the interrupt is repeated until the query has stopped.
        """
        self._cancelled.set()
        if self._started.is_set() and not self._finished.is_set():
            threading.Thread(target=self._interrupt_until_finished, daemon=True).start()

    def _interrupt_until_finished(self) -> None:
        deadline = time.monotonic() + self.CANCEL_PATIENCE_S
        while not self._finished.is_set() and time.monotonic() < deadline:
            try:
                self._cursor.interrupt()
            except duckdb.Error:  # closed between the check and the call: the query is over
                return
            self._finished.wait(0.01)

    def reader(self) -> pa.RecordBatchReader:
        self._started.set()
        if self._cancelled.is_set():
            self._finish()
            raise QueryCancelled("The query was cancelled before it started")
        try:
            relation = self._cursor.sql(self._sql, params=self._params or None)
            if relation is None:
                self._finish()
                return pa.RecordBatchReader.from_batches(pa.schema([]), [])
            source = relation.to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as exc:
            self._finish()
            raise self._translate(exc) from exc
        if self._cancelled.is_set():
            self._finish()
            raise QueryCancelled("The query was cancelled")
        return pa.RecordBatchReader.from_batches(source.schema, self._guarded(source))

    def _guarded(self, source: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        try:
            yield from source
        except (duckdb.Error, pa.ArrowException) as exc:
            raise self._translate(exc) from exc
        finally:
            self._finish()

    def _finish(self) -> None:
        self._finished.set()
        self._cursor.close()

    def _translate(self, exc: Exception) -> EngineError:
        if isinstance(exc, duckdb.InterruptException) or self._cancelled.is_set():
            return QueryCancelled("The query was cancelled")
        return EngineError(f"DuckDB: {str(exc).strip()}")
