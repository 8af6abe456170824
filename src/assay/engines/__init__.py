"""Engines run SQL and hand back Arrow. Each knows its sqlglot dialect and can cancel."""

from assay.engines.base import Engine, RunningQuery
from assay.engines.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine", "Engine", "RunningQuery"]
