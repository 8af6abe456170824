"""``*_distinct_on`` measures on PostgreSQL against hand-written SQL, and on PostgreSQL and
MariaDB against DuckDB's answers, row for row.

The cases are those of tests/semantic/test_distinct_on.py.
"""

from __future__ import annotations

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from tests.semantic.test_distinct_on import CASES, MARIADB_LACKS, rows, same_rows
from tests.special_model import distinct_on_model

pytestmark = pytest.mark.tpch


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return distinct_on_model()


@pytest.mark.parametrize("name", CASES)
def test_postgres_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_postgres: Engine
) -> None:
    query, sql = CASES[name]
    got = rows(tpch_postgres, compile_query(model, query, dialect="postgres").sql)
    same_rows(got, rows(tpch_postgres, sql))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("engine_name", ["tpch_postgres", "tpch_mariadb", "tpch_spark"])
def test_engine_matches_duckdb(
    name: str,
    engine_name: str,
    model: SemanticModel,
    tpch_engine: DuckDBEngine,
    request: pytest.FixtureRequest,
) -> None:
    if engine_name == "tpch_mariadb" and name in MARIADB_LACKS:
        pytest.skip("MariaDB has no aggregate PERCENTILE_CONT (median, percentile)")
    engine: Engine = request.getfixturevalue(engine_name)
    query, _ = CASES[name]
    want = rows(tpch_engine, compile_query(model, query, dialect="duckdb").sql)
    same_rows(rows(engine, compile_query(model, query, dialect=engine.dialect).sql), want)
