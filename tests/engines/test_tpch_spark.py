"""The TPC-H oracle and fan-out cases on Spark give DuckDB's answers.

The ``tpch_spark`` fixture (tests/engines/conftest.py) loads the test server with TPC-H once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.demo.tpch import TABLES
from assay.engines import DuckDBEngine
from assay.engines.spark import SparkEngine
from assay.semantic.model import SemanticModel
from tests.engine_parity import PARITY_CASES, assert_parity, assert_query_parity
from tests.engines.test_model_views import QUERY_VIEW_CASES
from tests.semantic import test_query_views as query_views
from tests.semantic import test_topic_relationships as topic_relationships

pytestmark = pytest.mark.tpch


@pytest.mark.parametrize("case", PARITY_CASES, ids=[c.stem for c in PARITY_CASES])
def test_spark_matches_duckdb(
    case: Path, tpch_model: SemanticModel, tpch_spark: SparkEngine, tpch_engine: DuckDBEngine
) -> None:
    assert_parity(case, tpch_model, tpch_spark, tpch_engine)


def test_loaded_tables_keep_the_demo_types(
    tpch_spark: SparkEngine, tpch_engine: DuckDBEngine
) -> None:
    """Same columns, decimals still decimal(15,2), dates still dates; and as many rows."""
    spark, duck = tpch_spark.catalog(), tpch_engine.catalog()
    for table in TABLES:
        assert list(spark[table]) == list(duck[table]), table
        for column, kind in duck[table].items():
            if kind.startswith("DECIMAL") or kind == "DATE":
                assert spark[table][column] == kind.lower().replace(" ", ""), (table, column)
        count = f"SELECT count(*) AS n FROM {table}"
        assert tpch_spark.execute(count).to_pylist() == tpch_engine.execute(count).to_pylist()
    assert spark["lineitem"]["l_orderkey"] == "bigint"
    assert spark["lineitem"]["l_linenumber"] == "int"


@pytest.mark.parametrize("name", QUERY_VIEW_CASES)
def test_spark_query_views_match_duckdb(
    name: str, tpch_spark: SparkEngine, tpch_engine: DuckDBEngine
) -> None:
    model = query_views._model({"customer_facts": query_views.FACTS})
    assert_query_parity(name, QUERY_VIEW_CASES[name], model, tpch_spark, tpch_engine)


def test_spark_topic_relationship_matches_duckdb(
    tpch_spark: SparkEngine, tpch_engine: DuckDBEngine
) -> None:
    model = topic_relationships._model(topic_relationships.BUILDING_TOPIC)
    query = {**topic_relationships.BY_SEGMENT, "join_paths_from_topic_name": "building_orders"}
    assert len(assert_query_parity("building_orders", query, model, tpch_spark, tpch_engine)) == 2
