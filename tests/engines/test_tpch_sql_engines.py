"""The TPC-H oracle and fan-out cases on PostgreSQL and MariaDB give DuckDB's answers.

Each database is loaded with TPC-H once per machine (a marker table says the load is
complete and at which scale; a file lock keeps xdist workers from loading it twice).
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assay.demo.load_sql import is_current, load_tpch
from assay.demo.tpch import generate_parquet
from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.engines.mysql import MySQLEngine
from assay.engines.postgres import PostgresEngine
from assay.errors import EngineUnavailable
from assay.semantic.model import SemanticModel
from tests.conftest import REPO, TEST_SCALE
from tests.engine_parity import PARITY_CASES, assert_parity
from tests.live import MARIADB_URL, POSTGRES_URL, unavailable

pytestmark = pytest.mark.tpch


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


IDS = [c.stem for c in PARITY_CASES]


@pytest.mark.parametrize("case", PARITY_CASES, ids=IDS)
def test_postgres_matches_duckdb(
    case: Path, tpch_model: SemanticModel, tpch_postgres: Engine, tpch_engine: DuckDBEngine
) -> None:
    assert_parity(case, tpch_model, tpch_postgres, tpch_engine)


@pytest.mark.parametrize("case", PARITY_CASES, ids=IDS)
def test_mariadb_matches_duckdb(
    case: Path, tpch_model: SemanticModel, tpch_mariadb: Engine, tpch_engine: DuckDBEngine
) -> None:
    assert_parity(case, tpch_model, tpch_mariadb, tpch_engine)


def test_loaded_tables_keep_the_demo_types(
    tpch_postgres: Engine, tpch_mariadb: Engine, tpch_engine: DuckDBEngine
) -> None:
    pg = tpch_postgres.catalog()["lineitem"]
    my = tpch_mariadb.catalog()["lineitem"]
    assert pg["l_extendedprice"] == "numeric(15,2)" and my["l_extendedprice"] == "decimal(15,2)"
    assert pg["l_shipdate"] == "date" and my["l_shipdate"] == "date"
    assert pg["l_orderkey"] == "bigint" and my["l_orderkey"].startswith("bigint")
    assert pg["l_linenumber"] == "integer" and my["l_linenumber"].startswith("int")
    count = "SELECT COUNT(*) AS n FROM lineitem"
    want = tpch_engine.execute(count).to_pylist()
    for engine in (tpch_postgres, tpch_mariadb):
        assert engine.execute(count).to_pylist() == want


def test_the_marker_tells_the_loaded_scale(tpch_postgres: Engine, tpch_mariadb: Engine) -> None:
    for url in (POSTGRES_URL, MARIADB_URL):
        assert is_current(url, TEST_SCALE)
        assert not is_current(url, TEST_SCALE * 2)
