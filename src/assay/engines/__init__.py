"""Engines run SQL and hand back Arrow. Each knows its sqlglot dialect and can cancel.

The names below are loaded on first use: importing a light module of this package
(``engines.urls``) must not load DuckDB and pyarrow (about 100 ms) into a command that
never runs a query."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.engines.base import Engine, RunningQuery
    from assay.engines.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine", "Engine", "RunningQuery"]


def __getattr__(name: str) -> Any:
    if name in ("Engine", "RunningQuery"):
        from assay.engines import base  # noqa: PLC0415

        return getattr(base, name)
    if name == "DuckDBEngine":
        from assay.engines.duckdb import DuckDBEngine  # noqa: PLC0415

        return DuckDBEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
