"""Column totals (``query.column_totals``): the request is checked, the SQL renders for every
dialect, and on DuckDB the totals rows equal hand-written SQL that re-aggregates each level,
through both plans (grouping sets and UNION ALL), in Omni's order with the limit per row kind."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot

from assay.engines import DuckDBEngine
from assay.errors import InvalidQuery, NotSupported
from assay.semantic.column_totals import parse_column_totals
from assay.semantic.compiler import DIALECTS, CompiledQuery, compile_query
from assay.semantic.compiler import totals as totals_module
from assay.semantic.model import SemanticModel
from assay.semantic.query import parse_query
from tests.rows import assert_same_rows
from tests.totals_cases import AGG, BY_SEGMENT, BY_SEGMENT_SQL, FANOUT, FANOUT_SQL, INDICATOR

pytestmark = pytest.mark.tpch


def rows(engine: DuckDBEngine, compiled: CompiledQuery) -> list[tuple[Any, ...]]:
    """The fields and the indicator of each row, in the result's order."""
    table = engine.execute(compiled.sql).rename_columns(compiled.columns)
    keep = [*(f.fully_qualified_name for f in compiled.fields), INDICATOR]
    return [tuple(r.values()) for r in table.select(keep).to_pylist()]


def plain(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


def compiled(
    model: SemanticModel, query: dict[str, Any], *, union: bool = False, dialect: str = "duckdb"
) -> CompiledQuery:
    """``query`` compiled (not cached), through the UNION ALL plan when ``union``."""
    if not union:
        return compile_query(model, parse_query(query), dialect=dialect)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(totals_module, "_NO_GROUPING_SETS", frozenset({dialect}))
        return compile_query(model, parse_query(query), dialect=dialect)


# ---------------------------------------------------------------- right numbers


@pytest.mark.parametrize("union", [False, True], ids=["grouping_sets", "union_all"])
def test_totals_are_re_aggregated(
    union: bool, tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    c = compiled(tpch_model, BY_SEGMENT, union=union)
    assert ("UNION ALL" in c.sql) is union and ("GROUPING SETS" in c.sql) is not union
    got = rows(tpch_engine, c)
    assert_same_rows(got, plain(tpch_engine, BY_SEGMENT_SQL), ordered=False, nonempty=True)
    grand = [r for r in got if r[-1] == "column_total"]
    # 150000 orders by 10000 customers
    assert grand == [(None, None, 150000, 10000, pytest.approx(142377.306871, rel=1e-9),
                      "column_total")]  # fmt: skip
    # summing the detail rows would have counted a customer once per priority
    assert sum(r[3] for r in got if r[-1] is None) > 40000


def test_fan_out_totals_are_de_duplicated(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    c = compiled(tpch_model, FANOUT)
    assert c.deduplicated_views == ("orders",) and "UNION ALL" in c.sql
    got = rows(tpch_engine, c)
    assert_same_rows(got, plain(tpch_engine, FANOUT_SQL), ordered=False, nonempty=True)
    # orders with an AIR line, each once: not the 85k AIR lines, nor a sum over nations
    assert [r[3] for r in got if r[-1] == "column_total"] == [65207]


def test_each_subtotal_follows_its_group_and_the_grand_total_comes_last(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    got = rows(tpch_engine, compiled(tpch_model, FANOUT))
    assert got[-1][-1] == "column_total"
    regions: list[str] = []
    for i, row in enumerate(got[:-1]):
        if row[-1] is None:
            regions.append(row[0])
            continue
        assert row[-1] == "column_subtotal::region.r_name" and row[1] is None
        # every detail row of the region precedes its subtotal, and none follows it
        assert got[i - 1][0] == row[0] and all(r[0] != row[0] for r in got[i + 1 :])
    assert regions == sorted(regions)
    revenue_of = [r[2] for r in got if r[-1] is None and r[0] == "ASIA"]
    assert revenue_of == sorted(revenue_of, reverse=True)  # the default sort within a group


def test_the_limit_applies_per_kind_of_row(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    c = compiled(tpch_model, {**FANOUT, "limit": 3})
    got = rows(tpch_engine, c)
    kinds = [r[-1] for r in got]
    assert kinds.count(None) == 3 and kinds.count("column_total") == 1
    assert kinds.count("column_subtotal::region.r_name") == 3
    assert c.limit_per == INDICATOR and c.limit == 3


def test_a_measure_key_totals_that_column_only(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query = {**BY_SEGMENT, "column_totals": {"orders.count": AGG}}
    got = rows(tpch_engine, compiled(tpch_model, query))
    assert [r for r in got if r[-1] is not None] == [
        (None, None, 150000, None, None, "column_total")
    ]
    assert len(got) == 26


def test_helper_columns_follow_the_fields_and_are_not_fields(tpch_model: SemanticModel) -> None:
    c = compiled(tpch_model, BY_SEGMENT)
    assert c.columns == [*BY_SEGMENT["fields"], "$omni_ssort_0", "$omni_group_grouping",
                         INDICATOR, "$omni_total_sort"]  # fmt: skip
    assert [f.fully_qualified_name for f in c.fields] == BY_SEGMENT["fields"]


# ---------------------------------------------------------------- every dialect


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("query", [BY_SEGMENT, FANOUT], ids=["one_scan", "fan_out"])
def test_sql_renders_and_parses_back(
    dialect: str, query: dict[str, Any], tpch_model: SemanticModel
) -> None:
    c = compiled(tpch_model, {**query, "limit": 10}, dialect=dialect)
    sqlglot.parse_one(c.sql, read=dialect)
    one_scan = query is BY_SEGMENT and dialect != "mysql"
    assert ("GROUPING SETS" in c.sql) is one_scan
    assert ("UNION ALL" in c.sql) is not one_scan
    assert "ROW_NUMBER() OVER (PARTITION BY" in c.sql and "<= 10" in c.sql


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("totals", "error", "message"),
    [
        ({"customer.c_mktsegmnt": AGG}, InvalidQuery,
         "query.column_totals: 'customer.c_mktsegmnt' is neither '::total::' nor a field of the "
         'query\'s fields. Did you mean "customer.c_mktsegment"?'),
        ({"::totl::": AGG}, InvalidQuery, 'Did you mean "::total::"?'),
        ({"::total::": {"type": "sum"}}, InvalidQuery,
         "query.column_totals['::total::']: expected {\"type\": \"aggregation\"}"),
        ({"::total::": True}, InvalidQuery, "got True"),
        (["::total::"], InvalidQuery, "query.column_totals: expected an object"),
        ({"orders.o_orderpriority": AGG}, InvalidQuery,
         "a subtotal by the last dimension is the detail row itself"),
    ],
)  # fmt: skip
def test_bad_totals_are_refused_naming_the_problem(
    totals: Any, error: type[Exception], message: str, tpch_model: SemanticModel
) -> None:
    with pytest.raises(error) as info:
        compile_query(tpch_model, {**BY_SEGMENT, "column_totals": totals})
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"offset": 5}, "query.column_totals together with query.offset"),
        ({"filters": {"orders.count": {"kind": "GREATER_THAN", "type": "number", "values": [5]}}},
         "query.column_totals with a filter on a measure"),
        ({"fields": ["orders.count"]}, "needs a dimension"),
        ({"fields": ["customer.c_mktsegment", "orders.o_orderpriority"]}, "needs a measure"),
    ],
)  # fmt: skip
def test_combinations_not_supported_are_refused_by_name(
    extra: dict[str, Any], message: str, tpch_model: SemanticModel
) -> None:
    query = {**BY_SEGMENT, "column_totals": {"::total::": AGG}, **extra}
    with pytest.raises(NotSupported) as info:
        compile_query(tpch_model, query)
    assert message in str(info.value)


@pytest.mark.parametrize("key", ["pivots", "calculations", "fill_fields"])
def test_totals_with_features_being_built_are_refused(key: str) -> None:
    """Checked by the totals parser itself, so the refusal stays once the feature is built."""
    query = {**BY_SEGMENT, key: ["customer.c_mktsegment"]}
    fields = parse_query(BY_SEGMENT).fields
    with pytest.raises(NotSupported, match=rf"query\.column_totals together with query\.{key}"):
        parse_column_totals(query, fields)


def test_row_totals_without_pivots_are_refused() -> None:
    """Row totals add up a pivot row (tests/semantic/test_pivots.py): without pivots, there
    is no row to add up."""
    with pytest.raises(InvalidQuery, match=r"query\.row_totals: .* this query has no pivots"):
        parse_query({**BY_SEGMENT, "row_totals": {"orders.count": AGG}})


# ---------------------------------------------------------------- two subtotal levels

THREE_LEVELS: dict[str, Any] = {
    "join_paths_from_topic_name": "lineitem",
    "fields": ["lineitem.l_returnflag", "lineitem.l_linestatus", "lineitem.l_shipmode",
               "lineitem.count", "lineitem.avg_quantity"],
    "column_totals": {"lineitem.l_linestatus": AGG, "lineitem.l_returnflag": AGG},
    "sorts": [{"column_name": "lineitem.l_returnflag", "sort_descending": True}],
    "limit": None,
}  # fmt: skip
THREE_LEVELS_SQL = """
SELECT l_returnflag, l_linestatus, l_shipmode, COUNT(*), AVG(l_quantity), NULL
FROM lineitem GROUP BY 1, 2, 3
UNION ALL
SELECT l_returnflag, l_linestatus, NULL, COUNT(*), AVG(l_quantity),
       'column_subtotal::lineitem.l_linestatus' FROM lineitem GROUP BY 1, 2
UNION ALL
SELECT l_returnflag, NULL, NULL, COUNT(*), AVG(l_quantity),
       'column_subtotal::lineitem.l_returnflag' FROM lineitem GROUP BY 1
"""


@pytest.mark.parametrize("union", [False, True], ids=["grouping_sets", "union_all"])
def test_two_subtotal_levels_nest_in_the_sorted_order(
    union: bool, tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    c = compiled(tpch_model, THREE_LEVELS, union=union)
    assert c.columns[5:7] == ["$omni_ssort_0", "$omni_ssort_1"]
    got = rows(tpch_engine, c)
    assert_same_rows(got, plain(tpch_engine, THREE_LEVELS_SQL), ordered=False, nonempty=True)
    flags = [r[0] for r in got if r[-1] == "column_subtotal::lineitem.l_returnflag"]
    assert flags == ["R", "N", "A"]  # sorted descending, as asked
    assert "column_total" not in [r[-1] for r in got]  # no ::total:: asked
    for i, row in enumerate(got):
        if row[-1] == "column_subtotal::lineitem.l_linestatus":
            # after its (flag, status) group's detail rows, before anything else
            assert got[i - 1][:2] == row[:2] and got[i - 1][-1] is None
            assert all(r[:2] != row[:2] for r in got[i + 1 :])
        if row[-1] == "column_subtotal::lineitem.l_returnflag":
            assert all(r[0] != row[0] for r in got[i + 1 :])
            assert got[i - 1][-1] == "column_subtotal::lineitem.l_linestatus"
