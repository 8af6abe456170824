"""The TPC-H oracle and fan-out cases on PostgreSQL and MariaDB give DuckDB's answers.

Each database is loaded with TPC-H once per machine (see conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.demo.load_sql import is_current
from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.model import SemanticModel
from tests.conftest import TEST_SCALE
from tests.engine_parity import PARITY_CASES, assert_parity
from tests.live import MARIADB_URL, POSTGRES_URL

pytestmark = pytest.mark.tpch


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
