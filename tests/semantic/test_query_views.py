"""Query views: a view whose table is a semantic query's result (Omni's ``query:``), on the
TPC-H demo model. Its rows, alone and joined, against hand-written SQL on DuckDB; every
dialect renders it; and each malformed one refuses the model with its file and path."""

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

FACTS: dict[str, Any] = {
    "query": {
        "base_view": "orders",
        "topic": "orders",
        "fields": {
            "orders.o_custkey": "customer_key",
            "orders.count": "order_count",
            "orders.sum_totalprice": "total_spent",
        },
        "filters": {"orders.o_orderstatus": {"is": "F"}},
    },
    "dimensions": {
        "customer_key": {"primary_key": True},
        "order_count": {},
        "total_spent": {},
        "order_band": {
            "sql": "CASE WHEN ${customer_facts.order_count} >= 10 THEN 'frequent' "
            "ELSE 'occasional' END"
        },
    },
    "measures": {
        "count": {"aggregate_type": "count"},
        "average_orders": {"aggregate_type": "average", "sql": "${customer_facts.order_count}"},
    },
}
JOIN = {
    "join_from_view": "customer",
    "join_to_view": "customer_facts",
    "on_sql": "${customer.c_custkey} = ${customer_facts.customer_key}",
    "relationship_type": "one_to_one",
}
#: the query view's rows, by hand
FACTS_SQL = """(SELECT o_custkey AS customer_key, COUNT(*) AS order_count,
    SUM(o_totalprice) AS total_spent FROM orders WHERE o_orderstatus = 'F' GROUP BY 1) f"""


def _model(views: dict[str, dict[str, Any]], join: bool = True) -> SemanticModel:
    files = read_model_files(tpch_model_dir())
    for name, spec in views.items():
        files[f"{name}.view"] = yaml.safe_dump(spec, sort_keys=False)
    if join:
        rels = [*yaml.safe_load(files["relationships"]), JOIN]
        files["relationships"] = yaml.safe_dump(rels, sort_keys=False)
    return build_model(files, name="tpch")


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return _model({"customer_facts": FACTS})


def test_a_query_view_is_a_table_of_its_querys_rows(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query = {
        "table": "customer_facts",
        "fields": ["customer_facts.order_band", "customer_facts.count",
                   "customer_facts.average_orders"],
        "limit": None,
    }  # fmt: skip
    got = rows(tpch_engine, compile_query(model, query).sql)
    want = rows(
        tpch_engine,
        "SELECT CASE WHEN order_count >= 10 THEN 'frequent' ELSE 'occasional' END, COUNT(*), "
        f"AVG(order_count) FROM {FACTS_SQL} GROUP BY 1",
    )
    assert_same_rows(got, want, ordered=False)
    assert len(got) == 2


def test_a_query_view_joins_like_any_view(model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    query = {
        "table": "customer",
        "fields": ["customer.c_mktsegment", "customer_facts.average_orders"],
        "filters": {"customer_facts.total_spent": {"type": "number", "kind": "GREATER_THAN",
                                                   "values": [1000000]}},
        "limit": None,
    }  # fmt: skip
    got = rows(tpch_engine, compile_query(model, query).sql)
    want = rows(
        tpch_engine,
        f"SELECT c.c_mktsegment, AVG(f.order_count) FROM customer c LEFT JOIN {FACTS_SQL} "
        "ON c.c_custkey = f.customer_key WHERE f.total_spent > 1000000 GROUP BY 1",
    )
    assert_same_rows(got, want, ordered=False)
    assert len(got) == 5


def test_a_query_view_may_read_another(tpch_engine: DuckDBEngine) -> None:
    bands = {
        "query": {
            "base_view": "customer_facts",
            "fields": {"customer_facts.order_band": "band", "customer_facts.count": "customers"},
        },
        "dimensions": {"band": {"primary_key": True}, "customers": {}},
        "measures": {
            "total_customers": {"aggregate_type": "sum", "sql": "${band_sizes.customers}"}
        },
    }
    model = _model({"band_sizes": bands, "customer_facts": FACTS})
    query = {"table": "band_sizes", "fields": ["band_sizes.total_customers"], "limit": None}
    got = rows(tpch_engine, compile_query(model, query).sql)
    band = "CASE WHEN order_count >= 10 THEN 'frequent' ELSE 'occasional' END"
    want = rows(tpch_engine, f"SELECT SUM(n) FROM (SELECT {band}, COUNT(*) AS n FROM {FACTS_SQL} "
                "GROUP BY 1) b")  # fmt: skip
    assert_same_rows(got, want, ordered=False)


def test_a_query_view_renders_for_every_dialect(model: SemanticModel) -> None:
    query = {"table": "customer_facts", "fields": ["customer_facts.order_band"]}
    for dialect in DIALECTS:
        sql = compile_query(model, query, dialect=dialect).sql
        assert "o_orderstatus" in sql and "__query_view" not in sql, dialect


def _issues(views: dict[str, dict[str, Any]], join: bool = True) -> list[tuple[str, str, str]]:
    with pytest.raises(ModelInvalid) as caught:
        _model(views, join)
    return [(i.file, i.yaml_path, i.message) for i in caught.value.issues]


def _facts(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(yaml.safe_dump(FACTS))
    for path, value in changes.items():
        node = spec
        *parents, last = path.split("__")
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return spec


LAST_30_DAYS = {"orders.o_orderdate": {"time_for_duration": ["30 days ago", "30 days"]}}
RENAMED = {"orders.o_custkey": "customer_key", "orders.cnt": "order_count",
           "orders.sum_totalprice": "total_spent"}  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        (_facts(dimensions__customer_key={}), "dimensions", "needs a primary key"),
        (_facts(table_name="orders"), "query", "neither table_name nor sql"),
        (_facts(query__filters=LAST_30_DAYS), "query.filters.orders.o_orderdate",
         "reads the clock"),
        (_facts(dimensions__order_band={"sql": "${customer_facts.order_cnt}"}),
         "dimensions.order_band.sql", "order_cnt"),
        (_facts(dimensions__spare={}), "dimensions.spare",
         "not one the query view's query returns"),
        (_facts(query__fields=RENAMED), "query", "does not compile"),
        (_facts(query__calculations={"calc_1": {"sql": "1"}}), "query.calculations",
         "Assay does not support calculations yet"),
    ],
    ids=["no_key", "table_and_query", "clock", "unknown_field", "unreturned_column",
         "bad_source_field", "calculations"],
)  # fmt: skip
def test_a_malformed_query_view_refuses_the_model(
    spec: dict[str, Any], path: str, words: str
) -> None:
    issues = _issues({"customer_facts": spec})
    assert any(
        file == "customer_facts.view" and where == path and words in message
        for file, where, message in issues
    ), issues


def test_query_views_that_read_each_other_are_a_cycle() -> None:
    def reading(other: str) -> dict[str, Any]:
        return {
            "query": {"base_view": other, "fields": {f"{other}.k": "k"}},
            "dimensions": {"k": {"primary_key": True}},
        }

    issues = _issues({"loop_a": reading("loop_b"), "loop_b": reading("loop_a")}, join=False)
    cycles = [m for _, path, m in issues if path == "query" and "cycle" in m]
    assert len(cycles) == 2 and all("loop_a, loop_b" in m for m in cycles), issues


def test_a_query_view_over_a_guarded_topic_is_refused_by_name() -> None:
    files = read_model_files(tpch_model_dir())
    topic = yaml.safe_load(files["orders.topic"])
    topic["access_filters"] = [{"field": "customer.c_mktsegment", "user_attribute": "segment"}]
    files["orders.topic"] = yaml.safe_dump(topic)
    files["customer_facts.view"] = yaml.safe_dump(FACTS)
    with pytest.raises(ModelInvalid) as caught:
        build_model(files, name="tpch", attributes=["segment"])
    assert any(
        i.file == "customer_facts.view" and "access rules guard is not supported yet" in i.message
        for i in caught.value.issues
    ), caught.value.issues
