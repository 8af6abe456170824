"""Opening the engine a connection URL names (``engines.urls`` tells which one it is).

Engines connect lazily (on the first query or catalog read), so a server whose warehouse is
down still starts; its queries fail as OFFLINE until the database is back.
"""

from __future__ import annotations

from assay.engines.base import Engine
from assay.engines.duckdb import DuckDBEngine
from assay.engines.urls import duckdb_file, engine_kind


# Drivers are imported on first use: the Spark client is an optional extra, and a server
# that serves only DuckDB should not pay for loading the others.
def open_engine(url: str, *, threads: int = 0, read_only: bool = True) -> Engine:
    """The engine for a connection URL, e.g. ``duckdb:///data.duckdb``,
    ``postgresql://user@host/db``, ``mysql://root@host/db``, ``sc://host:15002``."""
    kind = engine_kind(url)
    if kind == "duckdb":
        return DuckDBEngine(duckdb_file(url), threads=threads, read_only=read_only)
    if kind == "postgres":
        from assay.engines.postgres import PostgresEngine  # noqa: PLC0415

        return PostgresEngine(url)
    if kind == "mariadb":
        from assay.engines.mysql import MySQLEngine  # noqa: PLC0415

        return MySQLEngine(url)
    from assay.engines.spark import SparkEngine  # noqa: PLC0415

    return SparkEngine(url)
