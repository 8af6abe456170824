"""A topic's own views (tests/semantic/test_topic_views.py) on PostgreSQL and MariaDB, row for
row against DuckDB's answers."""

from __future__ import annotations

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.model import SemanticModel
from tests.engine_parity import assert_query_parity
from tests.semantic.test_topic_views import CASES, topic_views_model

pytestmark = pytest.mark.tpch


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return topic_views_model()


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
    assert_query_parity(name, query, model, engine, tpch_engine, ordered=ordered)
