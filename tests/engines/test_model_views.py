"""Query views and topic-scoped relationships on PostgreSQL and MariaDB, row for row against
DuckDB's answers (which tests/semantic/test_query_views.py and test_topic_relationships.py
check against hand-written SQL)."""

from __future__ import annotations

from typing import Any

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from tests.engine_parity import assert_query_parity
from tests.semantic import test_query_views as query_views
from tests.semantic import test_topic_relationships as topic_relationships

pytestmark = pytest.mark.tpch

QUERY_VIEW_CASES: dict[str, dict[str, Any]] = {
    "query_view_alone": {
        "table": "customer_facts",
        "fields": ["customer_facts.order_band", "customer_facts.count",
                   "customer_facts.average_orders"],
        "limit": None,
    },
    "query_view_joined": {
        "table": "customer",
        "fields": ["customer.c_mktsegment", "customer_facts.average_orders",
                   "customer_facts.total_spent"],
        "limit": None,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", QUERY_VIEW_CASES)
@pytest.mark.parametrize("engine_name", ["tpch_postgres", "tpch_mariadb"])
def test_query_views_match_duckdb(
    name: str, engine_name: str, request: pytest.FixtureRequest, tpch_engine: DuckDBEngine
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    model = query_views._model({"customer_facts": query_views.FACTS})
    assert_query_parity(name, QUERY_VIEW_CASES[name], model, engine, tpch_engine)


@pytest.mark.parametrize("engine_name", ["tpch_postgres", "tpch_mariadb"])
def test_a_topic_relationship_matches_duckdb(
    engine_name: str, request: pytest.FixtureRequest, tpch_engine: DuckDBEngine
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    model = topic_relationships._model(topic_relationships.BUILDING_TOPIC)
    query = {**topic_relationships.BY_SEGMENT, "join_paths_from_topic_name": "building_orders"}
    got = assert_query_parity("building_orders", query, model, engine, tpch_engine)
    assert len(got) == 2
