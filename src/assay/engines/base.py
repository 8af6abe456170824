"""The engine protocol: what the job runner needs from a database, and nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa


class RunningQuery(Protocol):
    """One query on its way. ``reader`` blocks until rows are ready; ``cancel`` may be called
    from any thread, before or during ``reader``, and makes it raise ``QueryCancelled``."""

    def reader(self) -> pa.RecordBatchReader: ...

    def cancel(self) -> None: ...


class Engine(Protocol):
    """A database Assay can query."""

    name: str
    dialect: str

    def start(self, sql: str, params: Sequence[Any] = ()) -> RunningQuery: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...

    def catalog(self) -> dict[str, dict[str, str]]:
        """Column types by table: ``{"table" and "schema.table": {column: type}}``, lower case
        (the loader's ``Catalog``)."""
        ...

    def close(self) -> None: ...
