"""The TPC-H demo on another engine: the same generated rows, loaded into PostgreSQL,
MariaDB or Spark, so the bundled tpch model answers the same questions there.

A load is skipped when the database already holds the demo at this scale (each loader keeps
an ``assay_demo`` marker table, written last, so an interrupted load is redone).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from assay.demo import load_spark, load_sql
from assay.demo.tpch import check_scale, generate_parquet
from assay.engines.urls import engine_kind, redact
from assay.errors import ConfigError

ENGINES = ("duckdb", "postgres", "mariadb", "spark")


def check_connection(engine: str, url: str | None) -> str:
    """The URL, once it is known to name ``engine``."""
    if engine not in ENGINES:
        raise ConfigError(f"Unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if not url:
        example = {"postgres": "postgresql://user@host:5432/db",
                   "mariadb": "mysql://user@host:3306/db", "spark": "sc://host:15002"}  # fmt: skip
        raise ConfigError(f"--engine {engine} needs --connection, e.g. {example.get(engine)}")
    kind = engine_kind(url)
    if kind != engine:
        raise ConfigError(f"--connection {redact(url)} is a {kind} URL, not {engine}")
    return url


def load_demo(engine: str, url: str, scale: float, work_dir: Path) -> bool:
    """Load TPC-H at ``scale`` into the database at ``url``; False when it was already there.
    The Parquet files are generated in a temporary folder under ``work_dir``: the Spark
    server reads them from there during the load (so it must see that file system)."""
    check_scale(scale)
    loader = load_spark if engine == "spark" else load_sql
    if loader.is_current(url, scale):
        return False
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tpch-parquet-", dir=work_dir) as tmp:
        loader.load_tpch(url, generate_parquet(Path(tmp), scale), scale)
    return True
