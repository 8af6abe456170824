"""The bundled tpch model: its public names (a contract for docs, examples and acceptance
suites), its descriptions, and sample queries that actually run."""

from __future__ import annotations

import pytest

from assay.demo.tpch import TABLES
from assay.engines import DuckDBEngine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel, model_id_for

MEASURES = {
    "lineitem": ["count", "sum_quantity", "avg_quantity", "sum_extendedprice", "avg_extendedprice",
                 "avg_discount", "revenue", "sum_charge", "sum_discount_amount"],
    "orders": ["count", "sum_totalprice", "avg_totalprice", "count_customers"],
    "customer": ["count", "sum_acctbal", "avg_acctbal"],
    "part": ["count", "avg_retailprice"],
    "supplier": ["count", "sum_acctbal"],
    "partsupp": ["count", "sum_availqty", "sum_supplycost", "inventory_value"],
}  # fmt: skip
TOPICS = {
    "lineitem": {"orders", "customer", "nation", "region", "part", "supplier", "supplier_nation",
                 "supplier_region", "partsupp"},
    "orders": {"customer", "nation", "region", "lineitem"},
    "customer": {"nation", "region", "orders"},
    "partsupp": {"part", "supplier", "supplier_nation", "supplier_region"},
}  # fmt: skip


def test_views_are_the_tpch_tables_plus_supplier_side(tpch_model: SemanticModel) -> None:
    assert set(tpch_model.views) == {*TABLES, "supplier_nation", "supplier_region"}


def test_every_column_is_a_dimension(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    for view in tpch_model.views.values():
        table = {"supplier_nation": "nation", "supplier_region": "region"}.get(view.name, view.name)
        columns = tpch_engine.execute(f"SELECT * FROM {table} LIMIT 0").column_names
        assert set(columns) <= set(view.dimensions), view.name
    assert tpch_model.views["lineitem"].primary_key.name == "l_key"  # type: ignore[union-attr]
    assert tpch_model.views["partsupp"].primary_key.name == "ps_key"  # type: ignore[union-attr]


@pytest.mark.parametrize("view", sorted(MEASURES))
def test_contract_measures_exist(tpch_model: SemanticModel, view: str) -> None:
    assert set(MEASURES[view]) <= set(tpch_model.views[view].measures)


def test_topics_join_what_the_contract_says(tpch_model: SemanticModel) -> None:
    assert set(tpch_model.topics) >= set(TOPICS)
    for name, joined in TOPICS.items():
        assert set(tpch_model.topics[name].joins) == joined, name
    assert tpch_model.topics["orders"].joins["lineitem"].relationship.type == "one_to_many"
    assert tpch_model.topics["customer"].joins["orders"].relationship.type == "one_to_many"


def test_stable_id_and_descriptions(tpch_model: SemanticModel) -> None:
    assert tpch_model.id == model_id_for("tpch") == "abd3361c-705d-5dd2-b031-d77674fb926b"
    for view in tpch_model.views.values():
        assert view.description, f"view {view.name} needs a description"
        for measure in view.measures.values():
            assert measure.description, measure.key
    assert "revenue" in tpch_model.views["lineitem"].measures["revenue"].label.lower()


def test_date_columns_have_timeframes(tpch_model: SemanticModel) -> None:
    for key in ["orders.o_orderdate", "lineitem.l_shipdate", "lineitem.l_commitdate",
                "lineitem.l_receiptdate"]:  # fmt: skip
        view, name = key.split(".")
        timeframes = tpch_model.views[view].dimensions[name].timeframes
        assert timeframes and {"date", "month", "quarter", "year"} <= set(timeframes), key


def test_sample_queries_run(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    samples = [(t, s) for t in tpch_model.topics.values() for s in t.sample_queries]
    assert samples
    for topic, sample in samples:
        compiled = compile_query(tpch_model, sample.query)
        assert compiled.topic == topic.name
        assert tpch_engine.execute(compiled.sql).num_rows > 0, sample.name
