"""Special dimensions (groups, bins, durations, order_by_field) on PostgreSQL against
hand-written SQL, and on PostgreSQL and MariaDB against DuckDB's answers, row for row.

The cases are those of tests/semantic/test_special_dimensions.py.
"""

from __future__ import annotations

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from tests.rows import assert_same_rows
from tests.rows import whole_number_rows as rows
from tests.semantic.test_special_dimensions import CASES
from tests.special_model import special_model

pytestmark = pytest.mark.tpch


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return special_model()


@pytest.mark.parametrize("name", CASES)
def test_postgres_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_postgres: Engine
) -> None:
    query, sql, ordered = CASES[name]
    got = rows(tpch_postgres, compile_query(model, query, dialect="postgres").sql)
    assert_same_rows(got, rows(tpch_postgres, sql), ordered=ordered, nonempty=True)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("engine_name", ["tpch_postgres", "tpch_mariadb", "tpch_spark"])
def test_engine_matches_duckdb(
    name: str,
    engine_name: str,
    model: SemanticModel,
    tpch_engine: DuckDBEngine,
    request: pytest.FixtureRequest,
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    query, _, ordered = CASES[name]
    want = rows(tpch_engine, compile_query(model, query, dialect="duckdb").sql)
    assert_same_rows(
        rows(engine, compile_query(model, query, dialect=engine.dialect).sql),
        want,
        ordered=ordered,
        nonempty=True,
    )
