"""Connection URLs: which database a URL names, and how to show one without its password.
Light on purpose (no driver is imported): the job store, the CLI and messages need these
without loading any engine."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

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


def duckdb_file(url: str) -> Path:
    """The file of a DuckDB connection URL: ``duckdb:///abs/path.duckdb``, ``duckdb:rel.db``
    or a plain path (``engines.connect`` sends other schemes to their engines)."""
    for prefix in ("duckdb:///", "duckdb://", "duckdb:"):
        if url.startswith(prefix):
            return Path(("/" if prefix == "duckdb:///" else "") + url.removeprefix(prefix))
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigError(f"{scheme}:// is not a DuckDB URL: expected duckdb:///path/file.duckdb")
    return Path(url)


def redact(url: str) -> str:
    """A URL fit for messages and logs: the password is replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
