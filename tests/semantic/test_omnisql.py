"""OmniSQL (``userEditedSQL`` without raw markers): how a statement is read, what its columns
are named, what is refused by name, and that it is governed as a semantic query is.

The rows these statements return are checked against hand-written SQL in
tests/engines/test_omnisql_rows.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from assay.errors import (
    Forbidden,
    InvalidQuery,
    NotSupported,
    PermissionDenied,
    QueryError,
    UnknownField,
    UnknownTopic,
)
from assay.semantic.compiler import DIALECTS, CompiledQuery, compile_query
from assay.semantic.compiler.omnisql import probe
from assay.semantic.model import SemanticModel
from assay.semantic.sql_mode import sql_mode
from assay.semantic.viewer import Viewer
from tests.governed import governed_model

NUMERIC = frozenset({"min_balance", "min_customers", "max_size"})
DEFAULTS = {"segment_pattern": ("%",), "min_balance": ("-1000",), "min_customers": ("0",),
            "max_size": ("50",), "omni_is_org_admin": ("false",)}  # fmt: skip
BY_PRIORITY = (
    "SELECT ${orders.o_orderpriority}, COUNT(${orders.o_orderkey}) AS of_expr_1, "
    "SUM(${orders.o_totalprice}) AS of_expr_2 FROM ${orders} GROUP BY 1 ORDER BY 1 LIMIT 50000"
)


def omnisql(
    model: SemanticModel,
    sql: str,
    *,
    who: Viewer | None = None,
    dialect: str | None = None,
    **extra: Any,
) -> CompiledQuery:
    query = {"modelId": "m", "table": "", "fields": [], "userEditedSQL": sql, **extra}
    return compile_query(model, query, dialect=dialect, viewer=who)


def viewer(role: str = "QUERIER", **values: Any) -> Viewer:
    attrs = dict(DEFAULTS)
    for name, value in values.items():
        attrs[name] = tuple(value) if isinstance(value, list | tuple) else (str(value),)
    return Viewer("u", attrs, NUMERIC, role=role)


@pytest.fixture(scope="module")
def governed() -> SemanticModel:
    return governed_model()


# ---------------------------------------------------------------- dispatch


@pytest.mark.parametrize(
    ("query", "mode"),
    [
        ({"userEditedSQL": ""}, "semantic"),
        ({"userEditedSQL": "  ", "rewriteSql": True}, "semantic"),
        ({"userEditedSQL": "SELECT 1"}, "omnisql"),
        ({"userEditedSQL": "SELECT 1", "rewriteSql": True}, "omnisql"),
        ({"userEditedSQL": "SELECT 1", "rewriteSql": False}, "raw"),
        ({"userEditedSQL": "SELECT 1", "dbtMode": True}, "raw"),
        ({"userEditedSQL": "SELECT 1", "parsed": False}, "raw"),
        ({"userEditedSQL": "-- DO NOT PARSE\nSELECT 1"}, "raw"),
        ({"userEditedSQL": "SELECT 1 -- DO NOT PARSE"}, "omnisql"),  # not a line of its own
    ],
)
def test_sql_mode_follows_omnis_dispatch(query: dict[str, Any], mode: str) -> None:
    assert sql_mode(query) == mode


@pytest.mark.parametrize(
    "extra",
    [{"rewriteSql": False}, {"dbtMode": True}, {"parsed": False}],
)
def test_raw_sql_is_not_compiled_as_omnisql(
    tpch_model: SemanticModel, extra: dict[str, Any]
) -> None:
    """Raw SQL runs as a query job (semantic.raw_sql), never through the OmniSQL compiler."""
    with pytest.raises(NotSupported, match=r"raw SQL \(rewriteSql: false\) runs only as a query"):
        omnisql(tpch_model, "SELECT r_name FROM region", **extra)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("filters", {"orders.o_orderstatus": {"kind": "EQUALS", "values": ["F"]}}),
        ("sorts", [{"column_name": "orders.o_orderpriority"}]),
        ("offset", 5),
        ("column_totals", {"::total::": {"type": "aggregation"}}),
        ("pivots", ["orders.o_orderstatus"]),
        ("fill_fields", ["orders.o_orderdate[month]"]),
    ],
)
def test_query_keys_omnisql_does_not_combine_with_are_refused(
    tpch_model: SemanticModel, key: str, value: Any
) -> None:
    with pytest.raises(NotSupported, match=f"query.{key} is not supported with userEditedSQL"):
        omnisql(tpch_model, BY_PRIORITY, **{key: value})


def test_non_text_sql_is_invalid(tpch_model: SemanticModel) -> None:
    with pytest.raises(InvalidQuery, match="expected SQL text"):
        compile_query(tpch_model, {"fields": [], "userEditedSQL": 5})


# ---------------------------------------------------------------- naming and shape


def test_bare_refs_are_named_by_field_expressions_by_alias_under_the_base_view(
    tpch_model: SemanticModel,
) -> None:
    compiled = omnisql(
        tpch_model,
        "SELECT ${orders.o_orderdate[year]} AS yr, ${orders.count} AS ignored, "
        "SUM(${orders.o_totalprice}) AS of_expr_1, ${orders.o_totalprice} * 2 AS dbl "
        "FROM ${orders} GROUP BY 1, 4",
    )
    assert compiled.columns == [
        "orders.o_orderdate[year]", "orders.count", "orders.of_expr_1", "orders.dbl",
    ]  # fmt: skip
    assert [f.is_dimension for f in compiled.fields] == [True, False, False, True]
    assert '"yr"' not in compiled.sql and '"ignored"' not in compiled.sql


def test_expression_columns_and_their_meta(tpch_model: SemanticModel) -> None:
    compiled = omnisql(tpch_model, BY_PRIORITY)
    assert compiled.columns == ["orders.o_orderpriority", "orders.of_expr_1", "orders.of_expr_2"]
    dim, count, total = compiled.fields
    assert dim.is_dimension and dim.field_name == "o_orderpriority" and dim.label
    assert (count.field_name, count.view_name, count.is_dimension) == ("of_expr_1", "orders", False)
    assert count.data_type is None  # from the result's Arrow schema
    assert total.fully_qualified_name == "orders.of_expr_2"
    assert compiled.base_view == "orders" and compiled.topic == "orders"


def test_unaliased_count_star_is_count_and_grains_and_measures_keep_their_names(
    tpch_model: SemanticModel,
) -> None:
    compiled = omnisql(
        tpch_model,
        "SELECT ${orders.o_orderdate[year]}, ${orders.sum_totalprice}, COUNT(*) "
        "FROM ${orders} GROUP BY 1",
    )
    assert compiled.columns == ["orders.o_orderdate[year]", "orders.sum_totalprice", "orders.count"]
    year, measure, _ = compiled.fields
    assert year.date_type == "YEAR" and year.is_dimension
    assert measure.aggregate_type and not measure.is_dimension
    assert '"orders.o_orderdate[year]"' in compiled.sql


def test_a_repeated_bare_ref_is_one_column_and_positions_follow(tpch_model: SemanticModel) -> None:
    compiled = omnisql(
        tpch_model,
        "SELECT ${orders.o_orderpriority}, ${orders.o_orderpriority} AS again, "
        "COUNT(*) AS n FROM ${orders} GROUP BY 1, 2 ORDER BY 3 DESC",
    )
    assert compiled.columns == ["orders.o_orderpriority", "orders.n"]
    assert "GROUP BY 1, 1" in compiled.sql and "ORDER BY 2 DESC" in compiled.sql


def test_an_item_without_a_name_is_refused(tpch_model: SemanticModel) -> None:
    with pytest.raises(
        InvalidQuery, match=r"select item 2 \(SUM\(\$\{orders.o_totalprice\}\)\) needs"
    ):
        omnisql(tpch_model, "SELECT ${orders.o_orderpriority}, SUM(${orders.o_totalprice}) "
                "FROM ${orders} GROUP BY 1")  # fmt: skip


def test_the_query_limit_is_ignored_and_the_sql_limit_bounds_it(tpch_model: SemanticModel) -> None:
    compiled = omnisql(tpch_model, BY_PRIORITY, limit=3)
    assert compiled.limit == 50000 and "LIMIT 50000" in compiled.sql
    unbounded = omnisql(tpch_model, BY_PRIORITY.removesuffix(" LIMIT 50000"), limit=3)
    assert unbounded.limit is None and "LIMIT" not in unbounded.sql
    probed = probe(compiled)
    assert probed.limit == 50001 and probed.sql.endswith("LIMIT 50001")
    assert probed.columns == compiled.columns and probe(unbounded) is unbounded


def test_a_select_alias_in_having_and_order_is_the_items_value(tpch_model: SemanticModel) -> None:
    compiled = omnisql(
        tpch_model,
        "SELECT ${orders.o_orderpriority}, COUNT(DISTINCT ${orders.o_custkey}) AS n "
        "FROM ${orders} GROUP BY 1 HAVING n > 25 ORDER BY n DESC",
    )
    assert "HAVING (COUNT(DISTINCT orders.o_custkey) > 25)" in compiled.sql
    assert "ORDER BY 2 DESC" in compiled.sql


def test_a_reference_inside_a_string_stays_text(tpch_model: SemanticModel) -> None:
    compiled = omnisql(
        tpch_model,
        "SELECT ${orders.o_orderpriority} FROM ${orders} "
        "WHERE ${orders.o_comment} <> '${orders.o_clerk}' GROUP BY 1",
    )
    assert "'${orders.o_clerk}'" in compiled.sql and "o_clerk" not in compiled.sql.split("'")[0]


def test_topic_joins_are_only_those_the_references_need(tpch_model: SemanticModel) -> None:
    alone = omnisql(tpch_model, "SELECT ${lineitem.l_shipmode}, SUM(${lineitem.l_quantity}) AS q "
                    "FROM ${lineitem} GROUP BY 1")  # fmt: skip
    assert alone.joined_views == ()
    by_region = omnisql(
        tpch_model,
        "SELECT ${region.r_name}, ${lineitem.revenue} FROM ${lineitem} GROUP BY 1",
    )
    assert by_region.joined_views == ("orders", "customer", "nation", "region")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_it_renders_for_every_dialect(tpch_model: SemanticModel, dialect: str) -> None:
    compiled = omnisql(
        tpch_model,
        "SELECT ${orders.o_orderdate[month]}, ${orders.count}, AVG(${orders.o_totalprice}) AS a "
        "FROM ${orders} WHERE ${orders.o_orderstatus} = 'F' GROUP BY 1 "
        "HAVING COUNT(*) > 2 ORDER BY 1 LIMIT 10",
        dialect=dialect,
    )
    assert compiled.dialect == dialect and "LIMIT 10" in compiled.sql
    assert "o_orderstatus = 'F'" in compiled.sql


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        ("SELECT ${orders.o_orderkey} FROM ${orders} UNION SELECT ${orders.o_custkey} "
         "FROM ${orders}", InvalidQuery, "UNION is not supported"),
        ("WITH t AS (SELECT 1) SELECT ${orders.count} FROM ${orders}", InvalidQuery, "CTE"),
        ("SELECT (SELECT MAX(o_totalprice) FROM orders) AS m FROM ${orders}", InvalidQuery,
         "subqueries"),
        ("SELECT ${orders.count} FROM ${orders} WHERE ${orders.o_custkey} IN "
         "(SELECT c_custkey FROM customer)", InvalidQuery, "subqueries"),
        ("SELECT ${orders.count} FROM orders", InvalidQuery, "FROM must name a topic or view"),
        ("SELECT ${orders.count} FROM ${orders} JOIN customer ON true", InvalidQuery, "JOIN"),
        ("SELECT ${orders.count} FROM ${orders}, customer", InvalidQuery, "JOIN"),
        ("SELECT ${orders.count} FROM ${orders} WHERE EXISTS (SELECT 1)", InvalidQuery,
         "subqueries"),
        ("SELECT o_totalprice AS t FROM ${orders}", InvalidQuery,
         'column "o_totalprice" is not a field reference'),
        ("SELECT orders.o_totalprice AS t FROM ${orders}", InvalidQuery, "not a field reference"),
        ("SELECT DISTINCT ${orders.o_orderpriority} FROM ${orders}", NotSupported,
         "SELECT DISTINCT"),
        ("SELECT ${orders.o_orderkey}, ROW_NUMBER() OVER () AS r FROM ${orders}", NotSupported,
         "window functions"),
        ("DELETE FROM ${orders}", InvalidQuery, "DELETE statements are refused"),
        ("UPDATE ${orders} SET o_comment = 'x'", InvalidQuery, "UPDATE statements are refused"),
        ("INSERT INTO ${orders} VALUES (1)", InvalidQuery, "INSERT statements are refused"),
        ("DROP TABLE orders", InvalidQuery, "DROP statements are refused"),
        ("SELECT ${orders.count} FROM ${orders}; DELETE FROM orders", InvalidQuery,
         "one SELECT statement, not 2"),
        ("SELECT ${orders.count} FROM", InvalidQuery, "does not parse"),
        ("SELECT * FROM ${orders}", InvalidQuery, "SELECT \\*"),
        ("SELECT pg_read_file('/etc/passwd') AS f FROM ${orders}", InvalidQuery,
         '"pg_read_file" is not a SQL function'),
        ("SELECT ${orders} AS v FROM ${orders}", InvalidQuery, "names a view"),
        ("SELECT ${orders.count} FROM ${orders.o_orderkey}", InvalidQuery,
         "must name a topic or view"),
        ("SELECT ${orders.o_orderpriority} FROM ${orders} WHERE ${orders.count} > 3",
         InvalidQuery, "cannot be in WHERE"),
        ("SELECT SUM(${orders.count}) AS s FROM ${orders}", InvalidQuery,
         "already an aggregate"),
        ("SELECT ${orders.count} FROM ${orders} FOR UPDATE", InvalidQuery, "LOCKS"),
        ("SELECT COUNT(*) AS n FROM ${}", InvalidQuery, "must name a topic or view"),
        ("SELECT COUNT(*) AS n FROM ${orders} TABLESAMPLE (10 PERCENT)", InvalidQuery,
         "on the FROM is not supported"),
        ("SELECT ${orders.o_orderdate[month} FROM ${orders}", InvalidQuery,
         "is not a field reference"),
        ("SELECT " + "(" * 3000 + "1" + ")" * 3000 + " AS a FROM ${orders}", InvalidQuery,
         "nested too deeply"),
        ("SELECT ${orders.o_orderpriority} FROM ${orders} GROUP BY 3", InvalidQuery,
         "GROUP BY 3 is not a select item"),
        ("SELECT ${orders.o_orderpriority} FROM ${orders} LIMIT 1.5", InvalidQuery,
         "LIMIT must be a whole number"),
        ("SELECT ${orders.count} FROM ${orders} WHERE ${orders.o_orderkey} = ?", InvalidQuery,
         "is not a SQL function or value"),
    ],
)  # fmt: skip
def test_what_cannot_be_governed_is_refused_by_name(
    tpch_model: SemanticModel, sql: str, error: type[QueryError], message: str
) -> None:
    with pytest.raises(error, match=message):
        omnisql(tpch_model, sql)


def test_an_unknown_view_is_named_with_a_suggestion(tpch_model: SemanticModel) -> None:
    with pytest.raises(UnknownTopic, match=r'No such view "ordrs"\..*orders'):
        omnisql(tpch_model, "SELECT ${ordrs.count} FROM ${ordrs}")


def test_an_unknown_field_is_named_with_a_suggestion(tpch_model: SemanticModel) -> None:
    with pytest.raises(UnknownField, match=r'No such field "orders.o_totalprise".*o_totalprice'):
        omnisql(tpch_model, "SELECT SUM(${orders.o_totalprise}) AS t FROM ${orders}")


def test_an_unknown_grain_is_an_error_not_a_missing_field(tpch_model: SemanticModel) -> None:
    with pytest.raises(UnknownField, match=r'Field "orders.o_orderdate\[fortnight\]" not found'):
        omnisql(tpch_model, "SELECT ${orders.o_orderdate[fortnight]} FROM ${orders}")


def test_a_field_of_a_view_the_topic_does_not_join_is_refused(tpch_model: SemanticModel) -> None:
    with pytest.raises(UnknownField, match=r'Field "part\.p_name" is not available from topic'):
        omnisql(tpch_model, "SELECT ${part.p_name} FROM ${customer}")


# ---------------------------------------------------------------- fan-out


def test_a_sum_a_join_would_repeat_is_refused(tpch_model: SemanticModel) -> None:
    with pytest.raises(NotSupported, match="SUM over rows of \\['orders'\\]"):
        omnisql(tpch_model, "SELECT ${lineitem.l_shipmode}, SUM(${orders.o_totalprice}) AS t "
                "FROM ${lineitem} GROUP BY 1")  # fmt: skip


def test_a_measure_a_join_would_repeat_is_refused(tpch_model: SemanticModel) -> None:
    with pytest.raises(NotSupported, match=r"measure orders\.count would be repeated"):
        omnisql(tpch_model, "SELECT ${lineitem.l_shipmode}, ${orders.count} FROM ${lineitem} "
                "GROUP BY 1")  # fmt: skip


def test_count_distinct_min_and_max_survive_repeated_rows(tpch_model: SemanticModel) -> None:
    compiled = omnisql(
        tpch_model,
        "SELECT ${lineitem.l_shipmode}, COUNT(DISTINCT ${orders.o_orderkey}) AS n, "
        "MAX(${orders.o_totalprice}) AS top FROM ${lineitem} GROUP BY 1",
    )
    assert compiled.joined_views == ("orders",)


# ---------------------------------------------------------------- governance


def test_a_role_that_may_not_write_sql_is_refused(governed: SemanticModel) -> None:
    with pytest.raises(PermissionDenied, match="manually written SQL"):
        omnisql(governed, "SELECT ${customer.count} FROM ${customer}",
                who=viewer("RESTRICTED_QUERIER", region="ASIA"))  # fmt: skip


def test_the_topics_rules_hold_the_statement(governed: SemanticModel) -> None:
    sql = omnisql(
        governed,
        "SELECT ${customer.c_mktsegment}, COUNT(*) AS n FROM ${customer} GROUP BY 1",
        who=viewer(region="ASIA", min_balance=250, min_customers=3),
    ).sql
    assert "region.r_name = 'ASIA'" in sql  # the access filter, its join forced
    assert "JOIN region AS region" in sql
    assert "customer.c_acctbal >= 250" in sql  # always_where_sql
    assert "HAVING" in sql and "COUNT(*) > 3" in sql  # always_having_sql


def test_a_user_with_no_value_for_the_access_filter_is_refused(governed: SemanticModel) -> None:
    with pytest.raises(Forbidden, match='"region" has no value'):
        omnisql(governed, "SELECT COUNT(*) AS n FROM ${customer}", who=viewer())


def test_an_or_in_the_users_where_cannot_escape_the_access_filter(
    governed: SemanticModel,
) -> None:
    sql = omnisql(
        governed,
        "SELECT ${region.r_name}, COUNT(*) AS n FROM ${customer} "
        "WHERE ${region.r_name} = 'EUROPE' OR 1 = 1 GROUP BY 1",
        who=viewer(region="ASIA"),
    ).sql
    assert "(region.r_name = 'ASIA')" in sql
    assert ") AND (region.r_name = 'EUROPE' OR 1 = 1)" in sql  # the user's WHERE, bracketed


def test_a_denied_field_is_as_if_absent(governed: SemanticModel) -> None:
    with pytest.raises(UnknownField, match=r'No such field "customer\.c_acctbal"'):
        omnisql(governed, "SELECT SUM(${customer.c_acctbal}) AS b FROM ${customer}",
                who=viewer(region="ALL"))  # fmt: skip


def test_an_alias_named_like_a_column_is_the_item_not_the_column(governed: SemanticModel) -> None:
    """``c_acctbal`` would read the denied column if the alias reached the database."""
    sql = omnisql(
        governed,
        "SELECT ${customer.c_name} AS c_acctbal, COUNT(*) AS n FROM ${customer} "
        "WHERE c_acctbal > 'A' GROUP BY c_acctbal ORDER BY c_acctbal",
        who=viewer(region="ALL"),
    ).sql
    assert "c_acctbal > 'A'" not in sql and "customer.c_name > 'A'" in sql
    assert "GROUP BY 1" in sql and "ORDER BY 1" in sql


def test_a_row_statement_on_a_topic_that_filters_groups_is_refused(
    governed: SemanticModel,
) -> None:
    with pytest.raises(InvalidQuery, match=r"filters groups \(always_having\).*add GROUP BY"):
        omnisql(governed, "SELECT ${customer.c_name} FROM ${customer}", who=viewer(region="ALL"))


def test_a_topic_the_user_may_not_query_is_not_a_way_round(governed: SemanticModel) -> None:
    with pytest.raises(UnknownTopic, match="No such topic 'orders'"):
        omnisql(governed, "SELECT ${orders.count} FROM ${orders}", who=viewer(region="ALL"))


def test_a_bare_view_is_refused_while_the_topics_rules_hold_the_user(
    governed: SemanticModel,
) -> None:
    with pytest.raises(Forbidden, match="query through a topic"):
        omnisql(governed, "SELECT ${nation.n_name} FROM ${nation}", who=viewer(region="ASIA"))


def test_a_join_rule_applies_when_the_statement_uses_the_join(governed: SemanticModel) -> None:
    sql = omnisql(
        governed,
        "SELECT ${part.p_brand}, COUNT(DISTINCT ${lineitem.l_orderkey}) AS n FROM ${lineitem} "
        "GROUP BY 1",
        who=viewer(max_size=20, segment_pattern="BUILDING"),
    ).sql
    assert "part.p_size <= 20" in sql and "customer.c_mktsegment LIKE 'BUILDING'" in sql
