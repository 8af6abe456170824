"""Connection URLs to engines: one place that knows which scheme is which database.

Engines connect lazily (on the first query or catalog read), so a server whose warehouse is
down still starts; its queries fail as OFFLINE until the database is back.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from assay.engines.base import Engine
from assay.engines.duckdb import DuckDBEngine, duckdb_file
from assay.errors import ConfigError, did_you_mean

# scheme -> engine name; the names are what `assay demo --engine` accepts too
SCHEMES = {
    "duckdb": "duckdb",
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mariadb",
    "mariadb": "mariadb",
    "sc": "spark",
}


def engine_kind(url: str) -> str:
    """The engine a URL names (a bare path is a DuckDB file)."""
    if "://" not in url and not url.startswith("duckdb:"):
        return "duckdb"
    scheme = urlsplit(url).scheme.lower() if "://" in url else "duckdb"
    kind = SCHEMES.get(scheme)
    if kind is None:
        raise ConfigError(
            f"Unknown database URL scheme {scheme!r} in {redact(url)}: expected one of "
            f"{', '.join(sorted(SCHEMES))}.{did_you_mean(scheme, SCHEMES)}"
        )
    return kind


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


def redact(url: str) -> str:
    """A URL fit for messages and logs: the password is replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
