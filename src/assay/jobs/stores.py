"""Which job store the settings ask for: SQLite in the home folder (one server), or a shared
PostgreSQL database (several replicas)."""

from __future__ import annotations

from pathlib import Path

from assay.config import Settings
from assay.counters import Counters
from assay.engines.urls import engine_kind
from assay.errors import ConfigError
from assay.jobs.sqlite import SQLiteJobStore
from assay.jobs.store import JobStore


def sqlite_store_path(settings: Settings) -> Path | None:
    """The SQLite file the settings' job store is (home's by default); None when it is not
    SQLite."""
    url = settings.job_store.strip()
    if not url:
        return settings.job_store_path
    if url.startswith("sqlite:"):
        return Path(url.removeprefix("sqlite:").removeprefix("//"))
    return None


def open_job_store(
    settings: Settings, *, pool_size: int = 8, counters: Counters | None = None
) -> JobStore:
    path = sqlite_store_path(settings)
    if path is not None:
        return SQLiteJobStore(path, counters=counters)
    url = settings.job_store.strip()
    if "://" in url and engine_kind(url) == "postgres":
        from assay.jobs.postgres import PostgresJobStore  # noqa: PLC0415 (psycopg: 60 ms)

        return PostgresJobStore(
            url,
            schema=settings.job_store_schema,
            lease_seconds=settings.lease_seconds,
            pool_size=pool_size,
            counters=counters,
            memory_seconds=settings.shared_store_memory_seconds,
        )
    raise ConfigError(
        f"Setting job_store must be empty (SQLite in home), sqlite:///path or a "
        f"postgresql:// URL, not {url.split('://', 1)[0]!r}"
    )
