"""Table calculations: reading Omni's parse tree, what is refused and how, the summary's
fields, and the SQL for every dialect. Engine results: tests/engines/test_calculations.py."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from assay.errors import CalculationsFailed, InvalidQuery, NotSupported
from assay.semantic.calculations import CallNode, FieldNode, LiteralNode, parse_calculations
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.compiler.calcs import ERROR_CELL, ROW
from assay.semantic.model import SemanticModel
from assay.semantic.query import parse_query

P, N = "orders.o_orderpriority", "orders.count"


def f(name: str) -> dict[str, Any]:
    return {"type": "field", "field_name": name}


def lit(value: Any) -> dict[str, Any]:
    return {"type": "literal", "value": value}


def call(op: str, *operands: dict[str, Any]) -> dict[str, Any]:
    return {"type": "call", "operator": op, "operands": list(operands)}


def whole(name: str) -> dict[str, Any]:
    """The whole column (Excel ``C:C``) as Omni writes it for SUMIF, RANK and lookups."""
    return call("Omni.OMNI_OFFSET_MULTI", f(name), lit(-536870911), lit(0), lit(1073741823), lit(1))


PCT = {"calc_name": "pct", "sql_expression": call("Omni.OMNI_PERCENT_OF_TOTAL", f(N))}


def query(*calcs: dict[str, Any], fields: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    listed = fields if fields is not None else [P, N, *(c["calc_name"] for c in calcs)]
    return {
        "join_paths_from_topic_name": "orders",
        "fields": listed,
        "calculations": list(calcs),
        **extra,
    }


# ---------------------------------------------------------------- reading the request


def test_the_tree_is_read_into_nodes_and_calc_names_are_not_fields() -> None:
    q = parse_query(query({**PCT, "label": "% of total", "format": "0.0%"}, fields=[P, "pct", N]))
    assert [r.text for r in q.fields] == [P, N]
    assert q.columns == (P, "pct", N)
    (c,) = q.calculations
    assert c.expression == CallNode("Omni.OMNI_PERCENT_OF_TOTAL", (FieldNode(N),))
    assert (c.label, c.format, c.listed) == ("% of total", "0.0%", True)


def test_literals_keep_their_json_type() -> None:
    tree = call("Omni.OMNI_FX_IFS", lit(True), lit("a"), lit(None), lit(1.5))
    (c,) = parse_calculations(
        {"fields": ["c"], "calculations": [{"calc_name": "c", "sql_expression": tree}]}
    )
    assert c.expression.operands == (  # type: ignore[union-attr]
        LiteralNode(True), LiteralNode("a"), LiteralNode(None), LiteralNode(1.5),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("calcs", "message"),
    [
        ([{"calc_name": "x", "original_formula": "=B1*2"}], "sql_expression is required"),
        ([{**PCT}, {**PCT}], "calc_name 'pct' is used twice"),
        ([{**PCT, "calc_name": "a:b"}], "may not contain ':'"),
        ([{**PCT, "calc_name": ""}], "calc_name: expected a non-empty name"),
        ([{**PCT, "calc_name": "$omni_row"}], "names starting $omni_ or __omni_ are Omni's own"),
        ([{**PCT, "swallow_error": True}], 'Did you mean "swallow_errors"?'),
        ([{**PCT, "swallow_errors": "yes"}], "swallow_errors: expected true or false"),
        ([{**PCT, "sql_expression": {"type": "formula"}}], "unknown node type 'formula'"),
        ([{**PCT, "sql_expression": {"type": "call", "operands": []}}], "needs an operator"),
        ("pct", "expected a list"),
    ],
)
def test_malformed_calculations_are_invalid_queries_naming_the_problem(
    calcs: Any, message: str
) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query(query(fields=[P, N, "pct", "x", "a:b"], **{"calculations": calcs}))
    assert message in str(info.value)
    assert "query.calculations" in str(info.value)


def test_a_calculation_no_one_reads_is_refused_not_computed_for_nothing() -> None:
    with pytest.raises(InvalidQuery, match=r"'pct' is not in query\.fields"):
        parse_query(query(PCT, fields=[P, N]))


def test_an_unlisted_calculation_is_computed_for_the_listed_ones_using_it(
    tpch_model: SemanticModel,
) -> None:
    twice = {
        "calc_name": "twice",
        "sql_expression": call("Omni.OMNI_FX_MULTIPLY", f("pct"), lit(2)),
    }
    compiled = compile_query(
        tpch_model, query(PCT, twice, fields=[P, N, "twice"]), dialect="duckdb"
    )
    assert compiled.columns == [P, N, "twice"]
    assert '"pct"' in compiled.sql


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"column_totals": {N: {"type": "aggregation"}}}, "calculations with column totals"),
        ({"row_totals": {N: {"type": "aggregation"}}}, "calculations with row totals"),
    ],
)
def test_calculations_with_totals_are_refused_by_name(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(NotSupported, match=message):
        parse_calculations(query(PCT, **extra))


def test_outside_pivot_without_pivots_is_refused_by_name(tpch_model: SemanticModel) -> None:
    with pytest.raises(InvalidQuery, match=r"\('pct'\): outside_pivot .* has no pivots"):
        compile_query(tpch_model, query({**PCT, "outside_pivot": True}), dialect="duckdb")
    with pytest.raises(InvalidQuery, match="outside_pivot: expected true or false"):
        parse_query(query({**PCT, "outside_pivot": "yes"}))


# ---------------------------------------------------------------- over filled rows


@pytest.mark.parametrize("dialect", DIALECTS)
def test_calculations_over_filled_rows_render_for_every_dialect(
    dialect: str, tpch_model: SemanticModel
) -> None:
    """The fill's query (a WITH of its frame) is the calculations' base: its columns are
    named (MySQL allows no column beside a bare ``*``), its sort numbers the rows."""
    q = query(PCT, fill_fields=["orders.o_orderdate[month_num]"], limit=12,
              fields=["orders.o_orderdate[month_num]", N, "pct"],
              sorts=[{"column_name": "orders.o_orderdate[month_num]"}])  # fmt: skip
    compiled = compile_query(tpch_model, q, dialect=dialect)
    tree = sqlglot.parse_one(compiled.sql, read=dialect)
    assert [e.alias_or_name for e in tree.expressions] == compiled.columns
    assert compiled.columns == ["orders.o_orderdate[month_num]", N, "pct"]
    assert "$omni_fill_frame" in compiled.sql and ROW in tree.args["order"].sql(dialect=dialect)
    bare = [e for select in tree.find_all(exp.Select) for e in select.expressions]
    assert not any(isinstance(e, exp.Star) for e in bare)


# ---------------------------------------------------------------- over pivots

S = "orders.o_orderstatus"
ROW_SUM = {
    "calc_name": "row_sum",
    "outside_pivot": True,
    "sql_expression": call(
        "Omni.OMNI_FX_SUM",
        call("Omni.OMNI_PIVOT_OFFSET", f(N), lit(0), lit(0), lit(1), lit(50)),
    ),
}


def pivoted(*calcs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    fields = [P, S, N, *(c["calc_name"] for c in calcs)]
    return query(*calcs, fields=fields, pivots=[S], limit=3, **extra)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_calculations_over_pivots_render_for_every_dialect(
    dialect: str, tpch_model: SemanticModel
) -> None:
    """Each pivot column is a series (PARTITION BY the column number); an outside_pivot
    calculation works per pivot row; the two numbers follow the columns, as unpivoted."""
    compiled = compile_query(tpch_model, pivoted(PCT, ROW_SUM), dialect=dialect)
    tree = sqlglot.parse_one(compiled.sql, read=dialect)
    assert [e.alias_or_name for e in tree.expressions] == compiled.columns
    assert compiled.columns == [P, S, N, "pct", "row_sum", "$omni_pivot_row_num",
                                "$omni_pivot_col_num"]  # fmt: skip
    windows = [w for w in tree.find_all(exp.Window) if isinstance(w.this, exp.Sum)]
    partitions = [[p.sql(dialect=dialect) for p in w.args["partition_by"]] for w in windows]
    assert any(p[-1].strip('"`').endswith("$omni_pivot_col_num") for p in partitions)
    assert any("$omni_pivot_row_num" in p[0] for p in partitions)


def test_pivot_offset_needs_outside_pivot(tpch_model: SemanticModel) -> None:
    inside = {**ROW_SUM, "outside_pivot": False, "swallow_errors": True}
    compiled = compile_query(tpch_model, pivoted(inside), dialect="duckdb")
    assert (
        "needs a pivoted query and outside_pivot: true" in compiled.invalid_calculations["row_sum"]
    )


def test_calculations_with_row_totals_stay_refused_by_name(tpch_model: SemanticModel) -> None:
    with pytest.raises(NotSupported, match="calculations with row totals"):
        parse_query(pivoted(PCT, row_totals={N: {"type": "aggregation"}}))


# ---------------------------------------------------------------- compiling


def test_columns_follow_fields_and_the_summary_marks_calculations(
    tpch_model: SemanticModel,
) -> None:
    calc = {**PCT, "label": "% of total", "format": "0.0%", "description": "share"}
    compiled = compile_query(tpch_model, query(calc, fields=["pct", P, N]), dialect="duckdb")
    assert compiled.columns == ["pct", P, N]
    meta = compiled.fields[0].to_dict()
    assert meta["is_calc"] is True
    assert (meta["field_name"], meta["label"], meta["format"]) == ("pct", "% of total", "0.0%")
    assert compiled.fields[1].to_dict()["is_calc"] is False
    assert compiled.invalid_calculations == {}
    assert compiled.calculated


def test_unsupported_operator_fails_the_calculations_naming_it(tpch_model: SemanticModel) -> None:
    bad = {"calc_name": "look", "sql_expression": call("Omni.OMNI_FX_VLOOKUP", f(N), f(P))}
    with pytest.raises(CalculationsFailed) as info:
        compile_query(tpch_model, query(PCT, bad), dialect="duckdb")
    assert info.value.error_type == "CALCS_FAILED"
    assert info.value.invalid == {
        "look": "Unsupported operator Omni.OMNI_FX_VLOOKUP: not supported yet"
    }
    assert "'look' Unsupported operator Omni.OMNI_FX_VLOOKUP" in info.value.message
    assert "swallow_errors" in info.value.message


def test_swallowed_errors_show_error_cells_and_the_rest_runs(tpch_model: SemanticModel) -> None:
    bad = {
        "calc_name": "look",
        "swallow_errors": True,
        "sql_expression": call("Omni.OMNI_FX_VLOOKUP", f(N), f(P)),
    }
    uses = {"calc_name": "uses", "swallow_errors": True, "sql_expression": f("look")}
    compiled = compile_query(tpch_model, query(PCT, bad, uses), dialect="duckdb")
    assert compiled.invalid_calculations == {
        "look": "Unsupported operator Omni.OMNI_FX_VLOOKUP: not supported yet",
        "uses": "uses the invalid calculation 'look'",
    }
    assert compiled.columns == [P, N, "pct", "look", "uses"]
    assert f"'{ERROR_CELL}' AS \"look\"" in compiled.sql


def test_a_calculation_using_an_invalid_one_is_invalid_too(tpch_model: SemanticModel) -> None:
    bad = {
        "calc_name": "look",
        "swallow_errors": True,
        "sql_expression": call("Omni.OMNI_FX_VLOOKUP", f(N)),
    }
    uses = {"calc_name": "uses", "sql_expression": call("Omni.OMNI_FX_PLUS", f("look"), lit(1))}
    with pytest.raises(CalculationsFailed) as info:
        compile_query(tpch_model, query(bad, uses), dialect="duckdb")
    assert info.value.invalid["uses"] == "uses the invalid calculation 'look'"


def test_a_field_not_in_fields_is_refused_with_a_suggestion(tpch_model: SemanticModel) -> None:
    typo = {"calc_name": "c", "sql_expression": call("Omni.OMNI_RANK", f("orders.cuont"))}
    with pytest.raises(CalculationsFailed) as info:
        compile_query(tpch_model, query(typo), dialect="duckdb")
    reason = info.value.invalid["c"]
    assert reason.startswith("references 'orders.cuont', which is not in fields.")
    assert 'Did you mean "orders.count"?' in reason


def test_refs_to_unselected_fields_are_refused_by_name(tpch_model: SemanticModel) -> None:
    calc = {
        "calc_name": "c",
        "allow_refs_to_unselected_fields": True,
        "sql_expression": call("Omni.OMNI_RANK", f("orders.sum_totalprice")),
    }
    with pytest.raises(NotSupported, match="allow_refs_to_unselected_fields is not supported"):
        compile_query(tpch_model, query(calc), dialect="duckdb")


def test_a_cycle_names_the_calculations(tpch_model: SemanticModel) -> None:
    a = {"calc_name": "a", "sql_expression": call("Omni.OMNI_FX_PLUS", f("b"), lit(1))}
    b = {"calc_name": "b", "sql_expression": call("Omni.OMNI_FX_PLUS", f("a"), lit(1))}
    with pytest.raises(InvalidQuery, match="a -> b -> a use each other in a cycle"):
        compile_query(tpch_model, query(a, b), dialect="duckdb")


@pytest.mark.parametrize(
    ("tree", "reason"),
    [
        (call("Omni.OMNI_FX_PLUS", lit(1)), "takes 2 operands, not 1"),
        (call("Omni.OMNI_PERCENT_OF_TOTAL", lit(1)), "takes one column"),
        (call("Omni.OMNI_FX_IFS", lit(True)), "pairs of condition and value"),
        (
            call("Omni.OMNI_OFFSET_MULTI", f(N), lit(-1), lit(1), lit(1), lit(1)),
            "other columns",
        ),
        (
            call("Omni.OMNI_OFFSET_MULTI", f(N), lit(-2), lit(0), lit(3), lit(1)),
            "several rows outside an aggregate",
        ),
        (
            call("SqlStdOperatorTable.CAST", f(N), {"type": "sql_type", "type_name_name": "GEO"}),
            "Unsupported CAST type GEO",
        ),
        (
            {"type": "window_call", "aggregate": {}},
            "Unsupported node type 'window_call': not supported yet",
        ),
        (
            {"type": "reference", "column_ref": [N, "column_total"]},
            "Unsupported node type 'reference': not supported yet",
        ),
        (
            call("Omni.OMNI_FX_XLOOKUP", lit(1), whole(N), whole(N)),
            "Unsupported operator Omni.OMNI_FX_XLOOKUP: not supported yet",
        ),
        (
            call("Omni.OMNI_FX_TEXT", f(N), lit("#,##0")),
            "Unsupported operator Omni.OMNI_FX_TEXT: not supported yet",
        ),
        (
            call("Omni.OMNI_FX_AI_CLASSIFY", f(P)),
            "Unsupported operator Omni.OMNI_FX_AI_CLASSIFY: not supported yet",
        ),
        (
            call("Omni.OMNI_FX_PIVOT_INDEX"),
            "Unsupported operator Omni.OMNI_FX_PIVOT_INDEX: not supported yet",
        ),
        (call("Omni.OMNI_FX_STDEV", f(N)), "Unsupported operator Omni.OMNI_FX_STDEV"),
        (call("Omni.OMNI_FX_SUM_IF", whole(P), lit("a*"), whole(N)), "wildcards"),
        (call("Omni.OMNI_FX_SUM_IF", whole(P), lit(""), whole(N)), "empty cells"),
        (call("Omni.OMNI_FX_SUM_IF", whole(P), f(P), whole(N)), "other than a constant"),
        (
            call(
                "Omni.OMNI_FX_SUM_IF",
                call("Omni.OMNI_OFFSET_MULTI", f(P), lit(-2), lit(0), lit(3), lit(1)),
                lit("x"),
                whole(N),
            ),
            "over part of a column is not supported yet",
        ),
        (call("Omni.OMNI_FX_COUNT_IF", whole(P), lit("x"), whole(N)), "takes 2 operands"),
        (call("Omni.OMNI_FX_SUM_IFS", whole(N), whole(P)), "pairs of range and criterion"),
        (call("Omni.OMNI_FX_RANK", lit(3), whole(N)), "other than the row's own cell"),
        (call("Omni.OMNI_FX_RANK", f(P), whole(N)), "other than the row's own cell"),
        (call("Omni.OMNI_FX_DATEDIF", lit("MD"), f(N), f(N)), "a unit (DAY, MONTH or YEAR)"),
        (call("Omni.OMNI_EPOCH", f(N), f(N)), "takes one value"),
        (call("Omni.ABSOLUTE_POSITION", lit(1)), "outside OMNI_OFFSET_MULTI is not supported"),
    ],
)
def test_shapes_we_do_not_evaluate_make_the_calculation_invalid(
    tree: dict[str, Any], reason: str, tpch_model: SemanticModel
) -> None:
    calc = {"calc_name": "c", "sql_expression": tree, "swallow_errors": True}
    compiled = compile_query(tpch_model, query(calc), dialect="duckdb")
    assert reason in compiled.invalid_calculations["c"]


def test_a_field_dropped_for_its_grain_is_named(tpch_model: SemanticModel) -> None:
    bad = "orders.o_orderdate[fortnight]"
    calc = {"calc_name": "c", "sql_expression": f(bad), "swallow_errors": True}
    compiled = compile_query(tpch_model, query(calc, fields=[P, bad, N, "c"]), dialect="duckdb")
    assert compiled.missing_fields == (bad,)
    assert "missing_fields" in compiled.invalid_calculations["c"]
    assert compiled.columns == [P, N, "c"]


# ---------------------------------------------------------------- SQL


ALL = [
    PCT,
    {"calc_name": "run", "sql_expression": call("Omni.OMNI_RUNNING_TOTAL", f(N))},
    {"calc_name": "rank", "sql_expression": call("Omni.OMNI_RANK", f(N))},
    {"calc_name": "chg", "sql_expression": call("Omni.OMNI_PERCENT_CHANGE_FROM_PREVIOUS", f(N))},
    {
        "calc_name": "amp",
        "sql_expression": call("Omni.OMNI_FX_AMPERSAND", f(P), lit("!")),
    },
    {"calc_name": "x100", "sql_expression": call("Omni.OMNI_FX_MULTIPLY", f("pct"), lit(100))},
]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_renders_sql_that_reads_back(dialect: str, tpch_model: SemanticModel) -> None:
    compiled = compile_query(tpch_model, query(*ALL, limit=3), dialect=dialect)
    tree = sqlglot.parse_one(compiled.sql, read=dialect)
    assert isinstance(tree, exp.Select)
    # the outer query orders by the row number; the base keeps its limit inside
    assert ROW in tree.args["order"].sql(dialect=dialect)
    assert [e.alias_or_name for e in tree.expressions] == compiled.columns
    assert tree.find(exp.Limit) is not None and tree.args.get("limit") is None
    assert len(list(tree.find_all(exp.Window))) >= 5
    assert compiled.columns == [P, N, "pct", "run", "rank", "chg", "amp", "x100"]


def test_duckdb_sql_is_as_written(tpch_model: SemanticModel) -> None:
    """The shape of the outer SELECTs, spelled out once (other tests check what it computes)."""
    compiled = compile_query(tpch_model, query(PCT, ALL[-1], limit=3), dialect="duckdb")
    assert compiled.sql == (
        'SELECT q."orders.o_orderpriority" AS "orders.o_orderpriority", q."orders.count" AS '
        '"orders.count", q."pct" AS "pct", q."pct" * 100 AS "x100" FROM (SELECT q.*, '
        'CAST(q."orders.count" AS DOUBLE) / NULLIF(SUM(q."orders.count") OVER (), 0) AS "pct" '
        'FROM (SELECT orders.o_orderpriority AS "orders.o_orderpriority", COUNT(*) AS '
        '"orders.count", ROW_NUMBER() OVER (ORDER BY COUNT(*) DESC) AS "$omni_row" FROM orders '
        'AS orders GROUP BY 1 ORDER BY "$omni_row" LIMIT 3) AS q) AS q ORDER BY q."$omni_row"'
    )


def test_the_probe_keeps_its_extra_row_out_of_the_windows(tpch_model: SemanticModel) -> None:
    q = query(PCT, limit=4, offset=2)
    probe = compile_query(tpch_model, q, dialect="postgres", calc_rows=3)
    assert 'PARTITION BY CASE WHEN q."$omni_row" <= 5 THEN 0 ELSE 1 END' in probe.sql
    assert "PARTITION BY" not in compile_query(tpch_model, q, dialect="postgres").sql


def test_mysql_orders_by_the_row_number_without_a_null_ordering_case(
    tpch_model: SemanticModel,
) -> None:
    sql = compile_query(tpch_model, query(*ALL), dialect="mysql").sql
    assert "IS NULL THEN 1 ELSE 0 END, q.`$omni_row`" not in sql
    assert "ORDER BY `$omni_row`" in sql


FUNCTIONS = [
    {"calc_name": "sumif", "sql_expression": call(
        "Omni.OMNI_FX_SUM_IF", whole(P), lit("<>3-MEDIUM"), whole(N))},
    {"calc_name": "countifs", "sql_expression": call(
        "Omni.OMNI_FX_COUNT_IFS", whole(N), lit(">=100"), whole(P), lit(">=2024-01-01"))},
    {"calc_name": "rank", "sql_expression": call("Omni.OMNI_FX_RANK", f(N), whole(N), lit(1))},
    {"calc_name": "pos", "sql_expression": call("Omni.ABSOLUTE_POSITION")},
    {"calc_name": "days", "sql_expression": call(
        "Omni.OMNI_FX_DATEDIF", lit("YEAR"), lit("2020-02-29"), lit("2024-03-01"))},
    {"calc_name": "epoch", "sql_expression": call("Omni.OMNI_EPOCH", lit("2024-01-02"))},
    {"calc_name": "median", "sql_expression": call("Omni.OMNI_FX_MEDIAN", f(N))},
]  # fmt: skip
#: dialects whose MEDIAN is not a window function (an ordered-set aggregate, or none exact)
NO_MEDIAN = {"postgres", "bigquery", "trino"}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_spreadsheet_functions_render_or_are_refused_by_name(
    dialect: str, tpch_model: SemanticModel
) -> None:
    calcs = [{**c, "swallow_errors": True} for c in FUNCTIONS]
    compiled = compile_query(tpch_model, query(*calcs), dialect=dialect)
    tree = sqlglot.parse_one(compiled.sql, read=dialect)
    assert [e.alias_or_name for e in tree.expressions] == compiled.columns
    invalid = dict(compiled.invalid_calculations)
    if dialect in NO_MEDIAN:
        assert invalid.pop("median") == f"OMNI_FX_MEDIAN is not supported yet on {dialect}"
    if dialect == "spark":
        assert invalid.pop("epoch") == "Omni.OMNI_EPOCH is not supported yet on spark"
    assert invalid == {}
    # the conditional sum is one value for the column: a CASE inside a window over all rows
    (total,) = [w for w in tree.find_all(exp.Window) if isinstance(w.this, exp.Sum)]
    assert isinstance(total.this.this, exp.Case) and total.args.get("order") is None


def test_conditional_aggregates_as_written(tpch_model: SemanticModel) -> None:
    """Excel's criteria: text ignores case, ``<>`` matches empty cells, an ISO date is a
    date, a number a number."""
    compiled = compile_query(tpch_model, query(*FUNCTIONS[:2]), dialect="duckdb")
    assert (
        "SUM(CASE WHEN (LOWER(CAST(q.\"orders.o_orderpriority\" AS TEXT)) <> '3-medium' OR "
        'q."orders.o_orderpriority" IS NULL) THEN q."orders.count" END) OVER ()'
    ) in compiled.sql
    assert (
        'COUNT(CASE WHEN q."orders.count" >= 100 AND q."orders.o_orderpriority" >= '
        "CAST('2024-01-01' AS DATE) THEN 1 END) OVER ()"
    ) in compiled.sql


def test_median_over_rows_is_duckdb_only(tpch_model: SemanticModel) -> None:
    trailing = call("Omni.OMNI_OFFSET_MULTI", f(N), lit(-2), lit(0), lit(3), lit(1))
    calc = {"calc_name": "m", "sql_expression": call("Omni.OMNI_FX_MEDIAN", trailing)}
    sql = compile_query(tpch_model, query(calc), dialect="duckdb").sql
    assert 'MEDIAN(q."orders.count") OVER (ORDER BY' in sql and "2 PRECEDING" in sql
    mariadb = compile_query(tpch_model, query({**calc, "swallow_errors": True}), dialect="mysql")
    reason = mariadb.invalid_calculations["m"]
    assert "over a range of rows is not supported yet on mysql" in reason
