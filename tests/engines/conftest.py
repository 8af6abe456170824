"""TPC-H on PostgreSQL, MariaDB and Spark for the engine suites: each database (each Spark
server) is loaded once (a marker table says the load is complete and at which scale; a file
lock keeps xdist workers from loading it twice)."""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assay.demo import load_spark
from assay.demo.load_sql import is_current, load_tpch
from assay.demo.tpch import generate_parquet
from assay.engines.base import Engine
from assay.engines.mysql import MySQLEngine
from assay.engines.postgres import PostgresEngine
from assay.engines.spark import SparkEngine
from assay.errors import EngineUnavailable
from tests import spark_server
from tests.conftest import REPO, TEST_SCALE
from tests.live import MARIADB_URL, POSTGRES_URL, unavailable


def _loaded(url: str, open_engine: Callable[[str], Engine], label: str) -> Iterator[Engine]:
    engine = open_engine(url)
    try:
        engine.execute("SELECT 1")
        cache = REPO / ".cache"
        cache.mkdir(exist_ok=True)
        with open(cache / f"tpch-{label}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not is_current(url, TEST_SCALE):
                with tempfile.TemporaryDirectory(prefix="assay-tpch-", dir=cache) as tmp:
                    load_tpch(url, generate_parquet(Path(tmp), TEST_SCALE), TEST_SCALE)
    except EngineUnavailable as exc:
        engine.close()
        unavailable(f"{label} is not reachable: {exc.message}")
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def tpch_postgres() -> Iterator[Engine]:
    yield from _loaded(POSTGRES_URL, PostgresEngine, "postgres")


@pytest.fixture(scope="session")
def tpch_mariadb() -> Iterator[Engine]:
    yield from _loaded(MARIADB_URL, MySQLEngine, "mariadb")


@pytest.fixture(scope="module")
def tpch_spark() -> Iterator[SparkEngine]:
    """A Spark Connect server holding TPC-H (loaded once per server, under a file lock).

    Module-scoped: a Spark session is cheap to open, and the server outlives every module."""
    url = spark_server.url()
    cache = REPO / ".cache"
    cache.mkdir(exist_ok=True)
    with open(cache / "tpch-spark.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not load_spark.is_current(url, TEST_SCALE):
            with tempfile.TemporaryDirectory(prefix="assay-tpch-", dir=cache) as tmp:
                load_spark.load_tpch(url, generate_parquet(Path(tmp), TEST_SCALE), TEST_SCALE)
    engine = SparkEngine(url)
    yield engine
    engine.close()
