"""``extends``, ``template`` and ``ignore_from_extended`` on the TPC-H demo data: views and
topics of ``tests/fixtures/models/extends`` added to the demo model, each query's rows against
hand-written SQL on DuckDB, and the inherited metadata as Omni resolves it."""

from __future__ import annotations

from typing import Any

import pytest

from assay.demo.tpch import tpch_model_dir
from assay.engines import DuckDBEngine
from assay.semantic.compiler import compile_query
from assay.semantic.loader import build_model, read_model_files
from assay.semantic.model import SemanticModel
from tests.conftest import FIXTURES

pytestmark = pytest.mark.tpch

EXTENDS = FIXTURES / "models" / "extends"

#: (query, hand-written SQL in DuckDB's dialect)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "view_extending_a_view_and_a_template": (
        {
            "table": "order_facts",
            "fields": [
                "order_facts.o_orderstatus",
                "order_facts.max_totalprice",
                "order_facts.count",
                "order_facts.count_urgent",
            ],
            "limit": None,
        },
        """SELECT o_orderstatus, MAX(ROUND(o_totalprice)), COUNT(*),
                  COUNT(*) FILTER (WHERE o_orderpriority = '1-URGENT')
           FROM orders GROUP BY 1""",
    ),
    "overridden_dimension_is_what_inherited_measures_read": (
        {
            "table": "order_facts",
            "fields": ["order_facts.o_orderpriority", "order_facts.sum_totalprice"],
            "limit": None,
        },
        "SELECT o_orderpriority, SUM(ROUND(o_totalprice)) FROM orders GROUP BY 1",
    ),
    "second_level_overrides_again": (
        {
            "table": "order_facts_rounded",
            "fields": [
                "order_facts_rounded.o_orderstatus",
                "order_facts_rounded.max_totalprice",
                "order_facts_rounded.min_totalprice",
                "order_facts_rounded.count_urgent",
            ],
            "limit": None,
        },
        """SELECT o_orderstatus, MAX(ROUND(o_totalprice, -3)), MIN(ROUND(o_totalprice, -3)),
                  COUNT(*) FILTER (WHERE o_orderpriority = '1-URGENT')
           FROM orders GROUP BY 1""",
    ),
    "topic_extending_a_template_and_a_topic": (
        {
            "join_paths_from_topic_name": "urgent_orders",
            "fields": ["region.r_name", "orders.count"],
            "limit": None,
        },
        """SELECT r_name, COUNT(*) FROM orders
           JOIN customer ON o_custkey = c_custkey JOIN nation ON c_nationkey = n_nationkey
           JOIN region ON n_regionkey = r_regionkey
           WHERE o_orderstatus = 'F' AND o_orderpriority = '1-URGENT' GROUP BY 1""",
    ),
    "topic_two_levels_down_overrides_one_filter": (
        {
            "join_paths_from_topic_name": "urgent_open_orders",
            "fields": ["region.r_name", "orders.count"],
            "limit": None,
        },
        """SELECT r_name, COUNT(*) FROM orders
           JOIN customer ON o_custkey = c_custkey JOIN nation ON c_nationkey = n_nationkey
           JOIN region ON n_regionkey = r_regionkey
           WHERE o_orderstatus = 'O' AND o_orderpriority = '1-URGENT' GROUP BY 1""",
    ),
}


def extends_model() -> SemanticModel:
    files = read_model_files(tpch_model_dir())
    files.update(read_model_files(EXTENDS))
    return build_model(files, name="tpch")


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return extends_model()


def rows(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(r.values()) for r in engine.execute(sql).to_pylist()), key=repr)


@pytest.mark.parametrize("name", CASES)
def test_duckdb_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query, sql = CASES[name]
    got = rows(tpch_engine, compile_query(model, query, dialect="duckdb").sql)
    assert got, "the query returned no rows: the case proves nothing"
    assert got == rows(tpch_engine, sql)


def test_templates_are_not_part_of_the_model(model: SemanticModel) -> None:
    assert "priority_template" not in model.views
    assert "orders_template" not in model.topics
    assert {"urgent_orders", "urgent_open_orders", "orders"} <= set(model.topics)


def test_inherited_metadata_parameter_by_parameter(model: SemanticModel) -> None:
    facts = model.views["order_facts"]
    assert facts.label == "Order Facts"
    status = facts.dimensions["o_orderstatus"]
    assert status.label == "Fulfilment"  # overridden
    assert list(status.all_values or []) == ["F", "O", "P"]  # inherited
    # orders is listed before the template, so its label wins
    assert facts.dimensions["o_orderpriority"].label == "Order Priority"
    assert "o_orderdate" in facts.dimensions  # the whole of orders is inherited
    assert "count_urgent" in facts.measures  # and the template's measure
    rounded = model.views["order_facts_rounded"]
    assert rounded.measures["max_totalprice"].label == "Largest Order (thousands)"
    assert rounded.dimensions["o_orderstatus"].label == "Fulfilment"  # two levels down


def test_ignore_from_extended_leaves_the_field_out_of_extending_views_only(
    model: SemanticModel,
) -> None:
    assert "internal_note" not in model.views["order_facts"].dimensions
    assert "internal_note" not in model.views["order_facts_rounded"].dimensions


def test_ignore_from_extended_field_stays_in_its_own_view() -> None:
    files = read_model_files(tpch_model_dir())
    files["notes.view"] = (
        "table_name: orders\ndimensions:\n  o_orderkey: {primary_key: true}\n"
        "  o_comment: {ignore_from_extended: true}\n"
    )
    files["more_notes.view"] = "extends: [notes]\n"
    model = build_model(files, name="tpch")
    assert "o_comment" in model.views["notes"].dimensions
    assert "o_comment" not in model.views["more_notes"].dimensions
    assert "o_orderkey" in model.views["more_notes"].dimensions


def test_topic_inherits_and_overrides(model: SemanticModel) -> None:
    urgent = model.topics["urgent_orders"]
    assert urgent.label == "Urgent Orders"
    assert urgent.base_view == "orders"
    assert model.topics["urgent_open_orders"].default_row_limit == 7
