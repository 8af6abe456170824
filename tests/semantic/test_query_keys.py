"""The remaining keys of Omni's query object (issue 12 item 7): ``transposed_measures``,
``default_group_by``, ``join_via_map``, ``controls`` (MULTI_FIELD_FILTER) and
``custom_summary_types``. Each is read or refused by name, never dropped; the SQL they
compile to renders for every dialect. Rows on real databases: tests/engines/test_query_keys_rows.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from assay.demo.tpch import tpch_model_dir
from assay.errors import InvalidQuery, NotSupported, QueryError, UnknownTopic
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.loader import load_model
from assay.semantic.model import SemanticModel
from assay.semantic.query import parse_query
from assay.semantic.raw_sql import compile_verbatim
from tests.conftest import FIXTURES

ORDERS = "orders"
TRANSPOSED: dict[str, Any] = {
    "join_paths_from_topic_name": ORDERS,
    "fields": ["orders.o_orderpriority", "orders.count", "orders.o_orderstatus",
               "orders.sum_totalprice"],
    "transposed_measures": ["orders.count", "orders.sum_totalprice"],
    "sorts": [{"column_name": "orders.o_orderpriority"}],
    "limit": 10,
}  # fmt: skip
OR_SEGMENT_OR_ASIA: dict[str, Any] = {
    "type": "MULTI_FIELD_FILTER",
    "conjunction": "OR",
    "filters": [
        {"fieldName": "region.r_name",
         "filter": {"type": "string", "kind": "EQUALS", "values": ["ASIA"]}},
        {"fieldName": "customer.c_mktsegment",
         "filter": {"type": "string", "kind": "EQUALS", "values": ["BUILDING"]}},
    ],
}  # fmt: skip
CONTROLLED: dict[str, Any] = {
    "join_paths_from_topic_name": "customer",
    "fields": ["region.r_name", "customer.count"],
    "controls": [OR_SEGMENT_OR_ASIA],
    "filters": {"customer.c_acctbal": {"type": "number", "kind": "GREATER_THAN", "values": [0]}},
}
UNGROUPED: dict[str, Any] = {
    "join_paths_from_topic_name": ORDERS,
    "fields": ["orders.o_orderpriority", "orders.o_orderstatus"],
    "default_group_by": False,
}
VIA_PARTSUPP: dict[str, Any] = {
    "table": "lineitem",
    "fields": ["part.p_brand", "lineitem.count"],
    "join_via_map": {"part": ["partsupp"]},
}


@pytest.fixture(scope="module")
def tpch() -> SemanticModel:
    return load_model(tpch_model_dir())


def q(**keys: Any) -> dict[str, Any]:
    return {"join_paths_from_topic_name": ORDERS, "fields": ["orders.o_orderpriority",
            "orders.count"], **keys}  # fmt: skip


# ---------------------------------------------------------------- reading the keys


@pytest.mark.parametrize("value", [True, "orders.count", {"orders.count": 1}, [1]])
def test_transposed_measures_must_be_a_list_of_names(value: Any) -> None:
    with pytest.raises(InvalidQuery, match=r"^query\.transposed_measures: expected a list"):
        parse_query(q(transposed_measures=value))


def test_a_transposed_measure_not_in_fields_is_named_with_a_suggestion() -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query(q(transposed_measures=["orders.cont"]))
    assert "'orders.cont' is not in query.fields" in str(info.value)
    assert 'Did you mean "orders.count"' in str(info.value)


def test_a_transposed_measure_listed_twice_is_refused() -> None:
    with pytest.raises(InvalidQuery, match=re.escape("'orders.count' is listed twice")):
        parse_query(q(transposed_measures=["orders.count", "orders.count"]))


@pytest.mark.parametrize(
    ("key", "value"),
    [("column_totals", {"::total::": {"type": "aggregation"}}), ("fill_fields",
     ["orders.o_orderpriority"]), ("pivots", ["orders.o_orderpriority"])],
)  # fmt: skip
def test_transposed_measures_with_other_features_are_refused_by_name(key: str, value: Any) -> None:
    with pytest.raises(NotSupported) as info:
        parse_query(q(transposed_measures=["orders.count"], **{key: value}))
    assert "transposed measures" in str(info.value) and key in str(info.value)


@pytest.mark.parametrize("value", ["false", 0, [], {}])
def test_default_group_by_must_be_a_boolean(value: Any) -> None:
    with pytest.raises(InvalidQuery, match=r"^query\.default_group_by: expected true or false"):
        parse_query(q(default_group_by=value))


@pytest.mark.parametrize(
    "value", [["part"], {"part": "partsupp"}, {"part": [1]}, {"part.x": []}, {"part": ["a b"]}]
)
def test_join_via_map_must_map_views_to_lists_of_views(value: Any) -> None:
    with pytest.raises(InvalidQuery, match=r"^query\.join_via_map"):
        parse_query(q(join_via_map=value))


@pytest.mark.parametrize("kind", ["FIELD_SELECTION", "TOP_N", "PERIOD_OVER_PERIOD", None])
def test_other_control_types_are_refused_by_name(kind: Any) -> None:
    with pytest.raises(NotSupported) as info:
        parse_query(q(controls=[{"type": kind, "filters": []}]))
    assert f"controls of type {kind!r} are not supported" in str(info.value)
    assert "MULTI_FIELD_FILTER" in str(info.value)


@pytest.mark.parametrize(
    ("control", "message"),
    [
        ({**OR_SEGMENT_OR_ASIA, "conjunction": None}, r"\.conjunction: expected \"OR\" or \"AND\""),
        ({**OR_SEGMENT_OR_ASIA, "conjunction": "XOR"}, r"\.conjunction: expected"),
        ({**OR_SEGMENT_OR_ASIA, "filters": []}, r"\.filters: expected a non-empty list"),
        ({**OR_SEGMENT_OR_ASIA, "filters": [{"filter": {}}]}, r"\.filters\[0\]: expected"),
        ({**OR_SEGMENT_OR_ASIA, "filters": [{"fieldName": "region.r_name", "filter": "ASIA"}]},
         r"filters\[0\]\.filter: a filter must be a typed object"),
        ({**OR_SEGMENT_OR_ASIA, "filters": [{"fieldName": "r_name", "filter": {}}]},
         "Invalid field name 'r_name'"),
        ("x", r"controls\[0\]: expected a control object"),
    ],
)  # fmt: skip
def test_malformed_multi_field_filters_are_named(control: Any, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        parse_query(q(controls=[control]))


def test_controls_must_be_a_list() -> None:
    with pytest.raises(InvalidQuery, match=r"^query\.controls: expected a list"):
        parse_query(q(controls={"type": "MULTI_FIELD_FILTER"}))


def test_custom_summary_types_empty_is_accepted_and_anything_else_refused() -> None:
    assert parse_query(q(custom_summary_types={})).fields
    with pytest.raises(NotSupported, match=r"^query\.custom_summary_types: .*send \{\}"):
        parse_query(q(custom_summary_types={"orders.count": "AVERAGE"}))
    with pytest.raises(InvalidQuery, match=r"^query\.custom_summary_types: expected an object"):
        parse_query(q(custom_summary_types=["AVERAGE"]))


def test_period_over_period_is_still_refused_by_name() -> None:
    with pytest.raises(NotSupported, match="period-over-period computations are not supported"):
        parse_query(q(period_over_period_computations=[{"periods_ago": 1}]))


@pytest.mark.parametrize(
    ("key", "value"),
    [("transposed_measures", ["orders.count"]), ("join_via_map", {"part": []}),
     ("custom_summary_types", {"x": 1}), ("controls", [OR_SEGMENT_OR_ASIA])],
)  # fmt: skip
def test_the_keys_are_refused_with_omnisql_and_raw_sql(
    tpch: SemanticModel, key: str, value: Any
) -> None:
    sql = {"userEditedSQL": "SELECT ${orders.count} FROM orders", **q(**{key: value})}
    with pytest.raises(NotSupported, match=rf"query\.{key}"):
        parse_query(sql)
    with pytest.raises(NotSupported, match=rf"query\.{key}"):
        compile_verbatim(tpch, {**sql, "rewriteSql": False}, dialect="duckdb")


# ---------------------------------------------------------------- transposed_measures


def test_transposed_columns_replace_the_measures_at_the_first_ones_place(
    tpch: SemanticModel,
) -> None:
    compiled = compile_query(tpch, TRANSPOSED, dialect="duckdb")
    assert compiled.columns == ["orders.o_orderpriority", "measure_name", "measure_order",
                                "measure_value", "orders.o_orderstatus"]  # fmt: skip
    meta = {f.fully_qualified_name: f for f in compiled.fields}
    assert meta["measure_name"].data_type == "STRING"
    assert meta["measure_value"].data_type == "NUMBER"
    assert not meta["measure_value"].is_dimension
    assert compiled.row_cap == 20  # limit counts query rows: two rows each
    assert compiled.transposed == 2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_transposed_measures_render_as_a_union_all_cross_join(
    tpch: SemanticModel, dialect: str
) -> None:
    sql = compile_query(tpch, TRANSPOSED, dialect=dialect).sql
    tree = sqlglot.parse_one(sql, read=dialect)
    (union,) = list(tree.find_all(exp.Union))
    assert not union.args.get("distinct")
    assert "CROSS JOIN" in sql and "ROW_NUMBER()" in sql
    casts = [c for c in tree.find_all(exp.Cast) if c.to.is_type("double")]
    assert len(casts) == 2, sql


def test_a_dimension_cannot_be_transposed(tpch: SemanticModel) -> None:
    query = {**TRANSPOSED, "transposed_measures": ["orders.o_orderstatus"]}
    with pytest.raises(InvalidQuery, match=re.escape("'orders.o_orderstatus' is a dimension")):
        compile_query(tpch, query, dialect="duckdb")


def test_a_measure_whose_values_are_not_numbers_is_refused() -> None:
    shop = load_model(FIXTURES / "models" / "shop")
    query = {"join_paths_from_topic_name": "order_items",
             "fields": ["orders.status", "order_items.product_names", "order_items.count"],
             "transposed_measures": ["order_items.product_names", "order_items.count"]}  # fmt: skip
    message = re.escape("'order_items.product_names' has STRING values")
    with pytest.raises(InvalidQuery, match=message):
        compile_query(shop, query, dialect="duckdb")


# ---------------------------------------------------------------- default_group_by


@pytest.mark.parametrize("dialect", DIALECTS)
def test_default_group_by_false_without_measures_does_not_group(
    tpch: SemanticModel, dialect: str
) -> None:
    tree = compile_query(tpch, UNGROUPED, dialect=dialect).expression
    assert tree.args.get("group") is None
    grouped = compile_query(tpch, {**UNGROUPED, "default_group_by": True}, dialect=dialect)
    assert grouped.expression.args.get("group") is not None


def test_measures_keep_the_aggregation_when_default_group_by_is_false(
    tpch: SemanticModel,
) -> None:
    query = {**UNGROUPED, "fields": [*UNGROUPED["fields"], "orders.count"]}
    plain = compile_query(tpch, {**query, "default_group_by": True}, dialect="duckdb").sql
    assert compile_query(tpch, query, dialect="duckdb").sql == plain
    assert "GROUP BY" in plain


def test_a_filter_on_a_measure_keeps_the_aggregation(tpch: SemanticModel) -> None:
    filters = {"orders.count": {"type": "number", "kind": "GREATER_THAN", "values": [1]}}
    sql = compile_query(tpch, {**UNGROUPED, "filters": filters}, dialect="duckdb").sql
    assert "GROUP BY" in sql and "HAVING" in sql


def test_default_group_by_false_with_fill_fields_is_refused(tpch: SemanticModel) -> None:
    query = {**UNGROUPED, "fill_fields": ["orders.o_orderstatus"]}
    with pytest.raises(NotSupported, match=r"default_group_by: false together with fill_fields"):
        compile_query(tpch, query, dialect="duckdb")


# ---------------------------------------------------------------- join_via_map


def _joined(sql: str, dialect: str) -> list[str]:
    tree = sqlglot.parse_one(sql, read=dialect)
    return [j.this.name for j in tree.find_all(exp.Join)]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_join_via_map_joins_through_the_views_it_names(tpch: SemanticModel, dialect: str) -> None:
    assert _joined(compile_query(tpch, VIA_PARTSUPP, dialect=dialect).sql, dialect) == [
        "partsupp", "part"]  # fmt: skip
    default = {**VIA_PARTSUPP, "join_via_map": {}}
    assert _joined(compile_query(tpch, default, dialect=dialect).sql, dialect) == ["part"]


def test_a_direct_path_and_a_longer_one_for_two_views(tpch: SemanticModel) -> None:
    query = {**VIA_PARTSUPP, "fields": ["part.p_brand", "supplier.s_name", "lineitem.count"],
             "join_via_map": {"part": [], "supplier": ["partsupp"]}}  # fmt: skip
    compiled = compile_query(tpch, query, dialect="duckdb")
    assert compiled.joined_views == ("part", "partsupp", "supplier")
    assert "ON partsupp.ps_suppkey = supplier.s_suppkey" in compiled.sql


def test_a_topic_accepts_its_own_path(tpch: SemanticModel) -> None:
    base = {"join_paths_from_topic_name": "lineitem", "fields": ["region.r_name",
            "lineitem.count"]}  # fmt: skip
    own = {**base, "join_via_map": {"region": ["orders", "customer", "nation"]}}
    assert compile_query(tpch, own, dialect="duckdb").sql == compile_query(
        tpch, base, dialect="duckdb").sql  # fmt: skip


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        ({"join_paths_from_topic_name": "lineitem", "fields": ["part.p_brand", "lineitem.count"],
          "join_via_map": {"part": ["partsupp"]}}, InvalidQuery,
         "topic 'lineitem' joins 'part' only as lineitem -> part, not lineitem -> partsupp -> "
         "part; send [] or remove it"),
        ({**VIA_PARTSUPP, "join_via_map": {"part": ["partsup"]}}, UnknownTopic,
         "no view 'partsup'. Did you mean \"partsupp\""),
        ({**VIA_PARTSUPP, "join_via_map": {"prt": []}}, UnknownTopic, "no view 'prt'"),
        ({"join_paths_from_topic_name": "orders", "fields": ["orders.count"],
          "join_via_map": {"part": []}}, InvalidQuery,
         "view 'part' is not joined from topic 'orders'"),
        ({**VIA_PARTSUPP, "join_via_map": {"part": ["orders"]}}, InvalidQuery,
         "the model has no relationship between 'orders' and 'part'"),
        ({**VIA_PARTSUPP, "join_via_map": {"part": ["partsupp", "lineitem"]}}, InvalidQuery,
         "passes a view twice"),
        ({**VIA_PARTSUPP, "join_via_map": {"lineitem": ["part"]}}, InvalidQuery,
         "'lineitem' is the base view"),
        ({**VIA_PARTSUPP, "join_via_map": {"part": ["partsupp"], "supplier": ["part",
          "partsupp"]}}, InvalidQuery,
         "'part' is joined from 'partsupp' by one path and from 'lineitem' by another"),
    ],
)  # fmt: skip
def test_a_path_that_cannot_be_joined_is_refused_by_name(
    tpch: SemanticModel, query: dict[str, Any], error: type[QueryError], message: str
) -> None:
    with pytest.raises(error) as info:
        compile_query(tpch, query, dialect="duckdb")
    assert message in str(info.value)


# ---------------------------------------------------------------- controls


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_multi_field_filter_is_an_or_in_brackets_anded_with_the_filters(
    tpch: SemanticModel, dialect: str
) -> None:
    tree = sqlglot.parse_one(compile_query(tpch, CONTROLLED, dialect=dialect).sql, read=dialect)
    where = tree.args["where"].this
    assert isinstance(where, exp.And)
    assert isinstance(where.expression, exp.Paren) and isinstance(where.expression.this, exp.Or)


def test_an_and_control_ands_each_filter(tpch: SemanticModel) -> None:
    query = {**CONTROLLED, "controls": [{**OR_SEGMENT_OR_ASIA, "conjunction": "AND"}]}
    sql = compile_query(tpch, query, dialect="duckdb").sql
    assert " OR " not in sql
    assert "(region.r_name = 'ASIA') AND (customer.c_mktsegment = 'BUILDING')" in sql


def test_empty_members_are_left_out_never_widening_the_or(tpch: SemanticModel) -> None:
    empty = {"fieldName": "customer.c_name", "filter": {"type": "composite", "filters": []}}
    control = {**OR_SEGMENT_OR_ASIA, "filters": [*OR_SEGMENT_OR_ASIA["filters"], empty]}
    with_empty = compile_query(tpch, {**CONTROLLED, "controls": [control]}, dialect="duckdb")
    assert with_empty.sql == compile_query(tpch, CONTROLLED, dialect="duckdb").sql
    only_empty = {**OR_SEGMENT_OR_ASIA, "filters": [empty]}
    plain = {k: v for k, v in CONTROLLED.items() if k != "controls"}
    assert compile_query(tpch, {**CONTROLLED, "controls": [only_empty]}, dialect="duckdb").sql \
        == compile_query(tpch, plain, dialect="duckdb").sql  # fmt: skip


def test_a_measure_in_a_multi_field_filter_is_refused_by_name(tpch: SemanticModel) -> None:
    member = {"fieldName": "customer.count",
              "filter": {"type": "number", "kind": "GREATER_THAN", "values": [5]}}  # fmt: skip
    control = {**OR_SEGMENT_OR_ASIA, "filters": [*OR_SEGMENT_OR_ASIA["filters"], member]}
    message = re.escape("'customer.count' cannot be in a MULTI_FIELD_FILTER")
    with pytest.raises(NotSupported, match=message):
        compile_query(tpch, {**CONTROLLED, "controls": [control]}, dialect="duckdb")


def test_an_unknown_field_in_a_multi_field_filter_is_named_with_a_suggestion(
    tpch: SemanticModel,
) -> None:
    member = {"fieldName": "region.r_nam", "filter": {"type": "string", "kind": "EQUALS",
              "values": ["ASIA"]}}  # fmt: skip
    with pytest.raises(QueryError, match=re.escape('Did you mean "region.r_name"')):
        compile_query(tpch, {**CONTROLLED, "controls": [{**OR_SEGMENT_OR_ASIA,
                      "filters": [member]}]}, dialect="duckdb")  # fmt: skip
