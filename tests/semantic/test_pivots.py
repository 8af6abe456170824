"""``pivots``: how they are read, what is refused and why, and the SQL every dialect gets
(spec section 2: Omni's row and column numbering, ``column_limit``, limit in pivot rows)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from assay.errors import InvalidQuery, NotSupported
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.model import SemanticModel
from assay.semantic.query import parse_query

FIELDS = ["orders.o_orderpriority", "orders.o_orderstatus", "orders.count"]


def q(**extra: Any) -> dict[str, Any]:
    return {"join_paths_from_topic_name": "orders", "fields": FIELDS,
            "pivots": ["orders.o_orderstatus"], **extra}  # fmt: skip


# ------------------------------------------------------------------------------ reading


def test_pivots_and_column_limit_are_read() -> None:
    parsed = parse_query(q(column_limit=7))
    assert parsed.pivots == ("orders.o_orderstatus",)
    assert parsed.column_limit == 7
    assert parse_query(q()).column_limit == 50
    assert parse_query({"fields": FIELDS}).pivots == ()
    assert parse_query({"fields": FIELDS, "pivots": []}).pivots == ()


def test_a_column_sort_is_read() -> None:
    sorts = [{"column_name": "orders.o_orderstatus", "is_column_sort": True},
             {"column_name": "orders.o_orderpriority", "is_column_sort": None}]  # fmt: skip
    parsed = parse_query(q(sorts=sorts))
    assert [s.column_sort for s in parsed.sorts] == [True, False]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"pivots": ["orders.o_orderdate"]},
         'query.pivots[0]: "orders.o_orderdate" is not in query.fields'),
        ({"pivots": ["orders.o_orderstatu"]}, 'Did you mean "orders.o_orderstatus"'),
        ({"pivots": [{"field": "orders.o_orderstatus"}]},
         "query.pivots[0]: expected a field name (a string"),
        ({"pivots": "orders.o_orderstatus"}, "query.pivots: expected a list of field names"),
        ({"column_limit": 0}, "query.column_limit: expected a positive integer, got 0"),
        ({"column_limit": "5"}, "query.column_limit: expected a positive integer, got '5'"),
        ({"column_limit": True}, "query.column_limit: expected a positive integer"),
        ({"sorts": [{"column_name": "orders.o_orderstatus", "is_column_sort": "yes"}]},
         "query.sorts[0].is_column_sort: expected true or false"),
    ],
)  # fmt: skip
def test_bad_pivots_are_invalid_naming_the_key(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query(q(**extra))
    assert message in str(info.value)
    assert info.value.status == 400


def test_a_column_sort_without_pivots_is_refused() -> None:
    sorts = [{"column_name": "orders.o_orderstatus", "is_column_sort": True}]
    with pytest.raises(InvalidQuery, match=r"query.sorts\[0\].is_column_sort: .* no pivots"):
        parse_query({"fields": FIELDS, "sorts": sorts})


def test_a_sort_at_one_pivot_value_is_read() -> None:
    at = {"orders.o_orderstatus": "F"}
    sorts = [{"column_name": "orders.count", "pivot_value_map": at}]
    assert parse_query(q(sorts=sorts)).sorts[0].pivot_values == (("orders.o_orderstatus", "F"),)


@pytest.mark.parametrize(
    ("value_map", "message"),
    [
        ("F", "pivot_value_map: expected an object of pivot field -> value"),
        ({"orders.o_orderstatus": ["F"]}, "pivot_value_map['orders.o_orderstatus']: expected"),
    ],
)
def test_a_bad_pivot_value_map_is_invalid(value_map: Any, message: str) -> None:
    sorts = [{"column_name": "orders.count", "pivot_value_map": value_map}]
    with pytest.raises(InvalidQuery) as info:
        parse_query(q(sorts=sorts))
    assert message in str(info.value)


def test_a_pivot_value_map_without_pivots_is_refused() -> None:
    sorts = [{"column_name": "orders.count", "pivot_value_map": {"orders.o_orderstatus": "F"}}]
    with pytest.raises(InvalidQuery, match=r"pivot_value_map: .* no pivots"):
        parse_query({"fields": FIELDS, "sorts": sorts})


@pytest.mark.parametrize("key", ["column_totals", "transposed_measures"])
def test_pivots_with_features_not_combined_yet_are_refused_by_name(key: str) -> None:
    with pytest.raises(NotSupported, match=f"query.{key}"):
        parse_query(q(**{key: ["x"]}))


def test_row_totals_are_read() -> None:
    totals = {"orders.count": {"type": "aggregation"}}
    assert parse_query(q(row_totals=totals)).row_totals == ("orders.count",)
    assert parse_query(q(row_totals={})).row_totals == ()


@pytest.mark.parametrize(
    ("totals", "error", "message"),
    [
        ({"orders.cnt": {"type": "aggregation"}}, InvalidQuery,
         "query.row_totals['orders.cnt']: \"orders.cnt\" is not in query.fields"),
        ({"::total::": {"type": "aggregation"}}, InvalidQuery, "is not in query.fields"),
        ({"orders.count": {"type": "average"}}, NotSupported,
         'only {"type": "aggregation"} totals are supported'),
        (["orders.count"], InvalidQuery, "query.row_totals: expected an object"),
    ],
)  # fmt: skip
def test_bad_row_totals_name_the_problem(totals: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        parse_query(q(row_totals=totals))
    assert message in str(info.value)


def test_row_totals_without_pivots_are_refused() -> None:
    with pytest.raises(InvalidQuery, match=r"query\.row_totals: .* no pivots"):
        parse_query({"fields": FIELDS, "row_totals": {"orders.count": {"type": "aggregation"}}})


# ---------------------------------------------------------------------- compiling


def test_row_totals_of_a_dimension_are_refused(tpch_model: SemanticModel) -> None:
    totals = {"orders.o_orderpriority": {"type": "aggregation"}}
    with pytest.raises(InvalidQuery, match="is not a measure of the query"):
        compile_query(tpch_model, q(row_totals=totals))


def test_row_totals_add_the_indicator_column(tpch_model: SemanticModel) -> None:
    compiled = compile_query(tpch_model, q(row_totals={"orders.count": {"type": "aggregation"}}))
    assert compiled.columns[-3:] == [
        "$omni_pivot_row_num",
        "$omni_pivot_col_num",
        "$omni_row_total_indicator",
    ]
    assert [f.fully_qualified_name for f in compiled.fields] == FIELDS
    assert "UNION ALL" in compiled.sql and "'row_total'" in compiled.sql


def test_a_pivot_must_be_a_dimension(tpch_model: SemanticModel) -> None:
    with pytest.raises(InvalidQuery, match=r'"orders\.count" is a measure'):
        compile_query(tpch_model, q(pivots=["orders.count"]))


def test_a_measure_sort_needs_a_pivot_value(tpch_model: SemanticModel) -> None:
    with pytest.raises(NotSupported, match=r'measure "orders\.count" needs the pivot value'):
        compile_query(tpch_model, q(sorts=[{"column_name": "orders.count"}]))
    at = {"orders.o_orderstatus": "F"}
    column = [{"column_name": "orders.count", "is_column_sort": True, "pivot_value_map": at}]
    with pytest.raises(NotSupported, match="ordering pivot columns by the measure"):
        compile_query(tpch_model, q(sorts=column))


@pytest.mark.parametrize(
    ("sort", "message"),
    [
        ({"column_name": "orders.count", "pivot_value_map": {"orders.o_orderstatu": "F"}},
         'names "orders.o_orderstatu", which is not a pivot of the query. Did you mean'),
        ({"column_name": "orders.count",
          "pivot_value_map": {"orders.o_orderstatus": "F", "orders.o_orderpriority": "x"}},
         'names "orders.o_orderpriority", which is not a pivot'),
        ({"column_name": "orders.o_orderpriority",
          "pivot_value_map": {"orders.o_orderstatus": "F"}},
         '"orders.o_orderpriority" is a dimension; pivot_value_map picks'),
    ],
)  # fmt: skip
def test_a_pivot_value_map_must_name_the_pivots(
    tpch_model: SemanticModel, sort: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidQuery) as info:
        compile_query(tpch_model, q(sorts=[sort]))
    assert message in str(info.value)


def test_a_pivot_value_map_must_give_every_pivot(tpch_model: SemanticModel) -> None:
    fields = [*FIELDS, "customer.c_mktsegment"]
    sort = {"column_name": "orders.count", "pivot_value_map": {"orders.o_orderstatus": "F"}}
    query = q(fields=fields, pivots=["orders.o_orderstatus", "customer.c_mktsegment"])
    with pytest.raises(InvalidQuery, match=r"missing customer\.c_mktsegment"):
        compile_query(tpch_model, {**query, "sorts": [sort]})


def test_a_column_sort_on_a_row_dimension_is_invalid(tpch_model: SemanticModel) -> None:
    sorts = [{"column_name": "orders.o_orderpriority", "is_column_sort": True}]
    with pytest.raises(InvalidQuery, match="is_column_sort but is not a pivot field"):
        compile_query(tpch_model, q(sorts=sorts))


def test_columns_are_the_fields_then_the_two_numbers(tpch_model: SemanticModel) -> None:
    compiled = compile_query(tpch_model, q(limit=10))
    assert compiled.columns == [*FIELDS, "$omni_pivot_row_num", "$omni_pivot_col_num"]
    assert [f.fully_qualified_name for f in compiled.fields] == FIELDS  # summary.fields
    assert compiled.limit == 10
    assert compiled.row_cap is None  # the SQL bounds its rows: limit counts pivot rows
    assert compile_query(tpch_model, {**q(), "pivots": []}).row_cap == 1000


def _windows(tree: exp.Expr) -> dict[str, exp.Window]:
    return {a.alias: a.this for a in tree.find_all(exp.Alias) if isinstance(a.this, exp.Window)}


def test_numbering_follows_row_and_column_sorts(tpch_model: SemanticModel) -> None:
    sorts = [{"column_name": "orders.o_orderstatus", "sort_descending": True},
             {"column_name": "orders.o_orderpriority", "sort_descending": True}]  # fmt: skip
    fields = ["orders.o_orderdate[year]", *FIELDS]
    compiled = compile_query(tpch_model, q(fields=fields, sorts=sorts, limit=5, offset=2,
                                            column_limit=3), dialect="postgres")  # fmt: skip
    windows = _windows(compiled.expression)
    row = windows["$omni_pivot_row_num"].args["order"].expressions
    col = windows["$omni_pivot_col_num"].args["order"].expressions
    # the sorted row dimension first, then the others, NULLs last on every engine
    assert [(o.this.name, bool(o.args.get("desc"))) for o in row] == [("c1", True), ("c0", False)]
    assert all(o.args.get("nulls_first") is False for o in [*row, *col])
    assert [(o.this.name, bool(o.args.get("desc"))) for o in col] == [("c2", True)]
    sql = compiled.sql
    assert '"$omni_pivot_row_num" > 2 AND n."$omni_pivot_row_num" <= 7' in sql
    kept = 'c."$omni_pivot_col_num" <= 3 OR c."$omni_pivot_col_num" = c."$omni_pivot_first_col"'
    assert kept in sql
    assert 'c."$omni_pivot_row_num" - 2 AS "$omni_pivot_row_num"' in sql
    assert "LIMIT" not in sql


def test_without_a_limit_every_pivot_row_is_kept(tpch_model: SemanticModel) -> None:
    sql = compile_query(tpch_model, q(limit=None)).sql
    assert 'n."$omni_pivot_row_num" <=' not in sql
    assert "LIMIT" not in sql


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_renders_sql_that_parses_back(
    tpch_model: SemanticModel, dialect: str
) -> None:
    fields = ["orders.o_orderdate[year]", *FIELDS, "customer.c_mktsegment"]
    sort = {
        "column_name": "orders.count",
        "sort_descending": True,
        "pivot_value_map": {"orders.o_orderstatus": "F", "customer.c_mktsegment": None},
    }
    totals = {"orders.count": {"type": "aggregation"}}
    pivots = ["orders.o_orderstatus", "customer.c_mktsegment"]
    for extra in ({}, {"sorts": [sort], "row_totals": totals}):
        compiled = compile_query(
            tpch_model, q(fields=fields, pivots=pivots, limit=3, **extra), dialect=dialect
        )
        tree = sqlglot.parse_one(compiled.sql, read=dialect)
        assert tree.find(exp.Window) is not None
        names = [s.alias_or_name for s in tree.expressions]
        assert names == compiled.columns
        assert "DENSE_RANK" in compiled.sql.upper()
