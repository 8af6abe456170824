"""A topic's own ``relationships``: a join only that topic uses, tried before the model's
relationships file. Here the orders topic's copy joins customers only when they are in the
BUILDING segment (a join with its own condition); the model's join, used everywhere else,
stays as it is. Rows against hand-written SQL on the TPC-H demo data."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from assay.demo.tpch import tpch_model_dir
from assay.engines import DuckDBEngine
from assay.errors import ModelInvalid
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.loader import build_model, read_model_files
from assay.semantic.model import SemanticModel
from tests.rows import assert_same_rows
from tests.semantic.test_special_dimensions import rows

pytestmark = pytest.mark.tpch

BUILDING_TOPIC: dict[str, Any] = {
    "base_view": "orders",
    "relationships": [
        {
            "join_from_view": "orders",
            "join_to_view": "customer",
            "on_sql": "${orders.o_custkey} = ${customer.c_custkey} "
            "AND ${customer.c_mktsegment} = 'BUILDING'",
            "relationship_type": "many_to_one",
            "join_type": "always_left",
        }
    ],
    "joins": {"customer": {"nation": {}}},
}
BY_SEGMENT = {"fields": ["customer.c_mktsegment", "orders.count"], "limit": None}


def _model(topic: dict[str, Any]) -> SemanticModel:
    files = read_model_files(tpch_model_dir())
    files["building_orders.topic"] = yaml.safe_dump(topic, sort_keys=False)
    return build_model(files, name="tpch")


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return _model(BUILDING_TOPIC)


def test_the_topic_joins_by_its_own_relationship(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query = {**BY_SEGMENT, "join_paths_from_topic_name": "building_orders"}
    got = rows(tpch_engine, compile_query(model, query).sql)
    want = rows(
        tpch_engine,
        "SELECT c.c_mktsegment, COUNT(*) FROM orders o LEFT JOIN customer c "
        "ON o.o_custkey = c.c_custkey AND c.c_mktsegment = 'BUILDING' GROUP BY 1",
    )
    assert_same_rows(got, want, ordered=False)
    segments = {segment for segment, _ in got}
    assert segments == {"BUILDING", None}  # other customers' orders keep no customer


def test_other_topics_keep_the_models_relationship(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    for scope in ({"join_paths_from_topic_name": "orders"}, {"table": "orders"}):
        got = rows(tpch_engine, compile_query(model, {**BY_SEGMENT, **scope}).sql)
        want = rows(
            tpch_engine,
            "SELECT c.c_mktsegment, COUNT(*) FROM orders o LEFT JOIN customer c "
            "ON o.o_custkey = c.c_custkey GROUP BY 1",
        )
        assert_same_rows(got, want, ordered=False)
        assert len(got) == 5, scope


def test_the_topics_join_renders_for_every_dialect(model: SemanticModel) -> None:
    query = {**BY_SEGMENT, "join_paths_from_topic_name": "building_orders"}
    for dialect in DIALECTS:
        sql = compile_query(model, query, dialect=dialect).sql
        assert "BUILDING" in sql, dialect


def _issues(topic: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(ModelInvalid) as caught:
        _model(topic)
    return [(i.file, i.yaml_path, i.message) for i in caught.value.issues]


def test_a_broken_topic_relationship_is_refused_with_its_path() -> None:
    broken = yaml.safe_load(yaml.safe_dump(BUILDING_TOPIC))
    broken["relationships"][0]["join_to_view"] = "custmer"
    issues = _issues(broken)
    assert any(
        file == "building_orders.topic"
        and path == "relationships[0].join_to_view"
        and "customer" in message
        for file, path, message in issues
    ), issues


def test_an_alias_in_a_topic_relationship_is_refused_by_name() -> None:
    aliased = yaml.safe_load(yaml.safe_dump(BUILDING_TOPIC))
    aliased["relationships"][0]["join_to_view_as"] = "building_customer"
    issues = _issues(aliased)
    assert any(
        path == "relationships[0].join_to_view_as" and "not supported yet" in message
        for _, path, message in issues
    ), issues
