"""``level_of_detail`` dimensions on PostgreSQL against hand-written SQL, and on PostgreSQL and
MariaDB against DuckDB's answers, row for row (``tests.engine_parity``).

The cases are those of tests/semantic/test_level_of_detail_dimensions.py, but the lineitem
fan-out: PostgreSQL cannot hash-join on ``IS NOT DISTINCT FROM``, and the nested loop over the
600k lines takes minutes (a known cost of the null-safe join, DuckDB runs it in a second).
"""

from __future__ import annotations

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from tests.engine_parity import assert_query_parity
from tests.semantic.test_distinct_on import rows, same_rows
from tests.semantic.test_level_of_detail_dimensions import CASES as ALL_CASES
from tests.special_model import lod_dimension_model

pytestmark = pytest.mark.tpch

CASES = {k: v for k, v in ALL_CASES.items() if k != "through_the_lineitem_fanout"}


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return lod_dimension_model()


@pytest.mark.parametrize("name", CASES)
def test_postgres_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_postgres: Engine
) -> None:
    query, sql = CASES[name]
    got = rows(tpch_postgres, compile_query(model, query, dialect="postgres").sql)
    same_rows(sorted(got), sorted(rows(tpch_postgres, sql)))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("engine_name", ["tpch_postgres", "tpch_mariadb"])
def test_engine_matches_duckdb(
    name: str,
    engine_name: str,
    model: SemanticModel,
    tpch_engine: DuckDBEngine,
    request: pytest.FixtureRequest,
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    assert_query_parity(name, CASES[name][0], model, engine, tpch_engine)
