"""``fill_fields``: parsing, refusals, the bounds a date filter gives, and the SQL shape.

The rows are checked against hand-written SQL in tests/engines/test_fill_fields_rows.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from assay.errors import InvalidQuery, NotSupported
from assay.semantic.calendar import Calendar
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.fill_fields import (
    Bounds,
    date_buckets,
    date_literals,
    filter_bounds,
    parse_fill_fields,
)
from assay.semantic.filters import parse_json_filter
from assay.semantic.model import SemanticModel
from assay.semantic.query import parse_query
from tests.special_model import special_model

NOW = datetime(2024, 3, 15, 10, 30)
DATE = "orders.o_orderdate"


def query(fields: list[str], fill: list[str], **extra: Any) -> dict[str, Any]:
    return {"join_paths_from_topic_name": "orders", "fields": fields, "fill_fields": fill, **extra}


def between(left: str, right: str) -> dict[str, Any]:
    return {DATE: {"type": "date", "kind": "BETWEEN", "left_side": left, "right_side": right}}


def filled_values(compiled_sql: str, dialect: str) -> list[str]:
    """The literals of the domain the SQL fills with (its VALUES rows or UNION ALL arms)."""
    tree = sqlglot.parse_one(compiled_sql, read=dialect)
    frame = next(c for c in tree.find_all(exp.CTE) if c.alias == "$omni_fill_frame")
    return [lit.name for lit in frame.find_all(exp.Literal) if lit.is_string]


# ---------------------------------------------------------------- parsing and bad input


def test_fill_fields_are_parsed_as_written_in_fields() -> None:
    q = parse_query(query([f"{DATE}[month]", "orders.count"], [f"{DATE}[month]"]))
    assert q.fill_fields == (f"{DATE}[month]",)


@pytest.mark.parametrize("bad", ["orders.o_orderdate[month]", [1], {"a": 1}])
def test_fill_fields_must_be_a_list_of_names(bad: Any) -> None:
    with pytest.raises(InvalidQuery, match=r"query\.fill_fields: expected a list of field names"):
        parse_query({"fields": [f"{DATE}[month]"], "fill_fields": bad})


def test_a_fill_field_not_in_fields_is_named_with_a_suggestion() -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query({"fields": [f"{DATE}[month]"], "fill_fields": [f"{DATE}[mnth]"]})
    message = str(info.value)
    assert "'orders.o_orderdate[mnth]' is not in query.fields" in message
    assert 'Did you mean "orders.o_orderdate[month]"?' in message


def test_a_fill_field_needs_the_same_grain_as_in_fields() -> None:
    with pytest.raises(InvalidQuery, match=r"'orders\.o_orderdate\[year\]' is not in query"):
        parse_query({"fields": [f"{DATE}[month]"], "fill_fields": [f"{DATE}[year]"]})


@pytest.mark.parametrize("key", ["column_totals", "row_totals"])
def test_fill_with_totals_is_refused_by_name(key: str) -> None:
    obj = {"fields": ["orders.o_orderstatus"], "fill_fields": ["orders.o_orderstatus"], key: [1]}
    with pytest.raises(NotSupported, match=f"fill_fields together with {key}"):
        parse_fill_fields(obj, ["orders.o_orderstatus"])


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_pivoted_fill_renders_for_every_dialect(dialect: str, tpch_model: SemanticModel) -> None:
    """The fill wraps the grouped query inside the pivot numbering (group, fill, number)."""
    month = f"{DATE}[month_num]"
    q = {"join_paths_from_topic_name": "orders", "pivots": [month], "fill_fields": [month],
         "fields": ["orders.o_orderpriority", month, "orders.count"], "limit": 10}  # fmt: skip
    compiled = compile_query(tpch_model, q, dialect=dialect, now=NOW)
    tree = sqlglot.parse_one(compiled.sql, read=dialect)
    assert [e.alias_or_name for e in tree.expressions] == compiled.columns
    frame = next(t for t in tree.find_all(exp.CTE) if t.alias == "$omni_fill_frame")
    numbering = next(w for w in tree.find_all(exp.Window) if "DENSE_RANK" in w.sql().upper())
    assert frame.find(exp.Window) is None and numbering.find(exp.CTE) is None
    assert numbering.find_ancestor(exp.Subquery) is not None


def test_a_measure_cannot_be_filled(tpch_model: SemanticModel) -> None:
    q = query(["orders.o_orderstatus", "orders.count"], ["orders.count"])
    with pytest.raises(InvalidQuery, match=r"'orders\.count' is a measure"):
        compile_query(tpch_model, q, now=NOW)


@pytest.mark.parametrize(
    ("field", "why"),
    [
        ("orders.o_comment", "has no known set of values"),
        ("orders.o_totalprice", "has no known set of values"),
        (f"{DATE}[day_of_month]", "the grain 'day_of_month' has no fixed set"),
        (f"{DATE}[raw]", "has no known set of values"),
    ],
)
def test_a_dimension_without_a_domain_is_refused_saying_why(
    tpch_model: SemanticModel, field: str, why: str
) -> None:
    with pytest.raises(NotSupported) as info:
        compile_query(tpch_model, query([field, "orders.count"], [field]), now=NOW)
    assert f"query.fill_fields: {field!r} cannot be filled" in str(info.value)
    assert why in str(info.value)


def test_more_than_the_cap_of_buckets_is_refused(tpch_model: SemanticModel) -> None:
    q = query([f"{DATE}[date]", "orders.count"], [f"{DATE}[date]"])
    q["filters"] = between("1900-01-01", "2000-01-01")
    with pytest.raises(InvalidQuery, match="more than 10,000 rows; narrow its date filter"):
        compile_query(tpch_model, q, now=NOW)


# ---------------------------------------------------------------- bounds from filters


def bounds_of(obj: dict[str, Any]) -> Bounds:
    f = parse_json_filter(obj, where="test")
    assert f is not None
    return filter_bounds(f, NOW, Calendar())


def test_between_bounds_the_half_open_range() -> None:
    b = bounds_of(
        {"type": "date", "kind": "BETWEEN", "left_side": "2024-01", "right_side": "2024-03"}
    )
    assert b == Bounds(datetime(2024, 1, 1), datetime(2024, 3, 1))


def test_last_n_months_is_resolved_at_the_compiles_now() -> None:
    b = bounds_of({"type": "date", "kind": "TIME_FOR_INTERVAL_DURATION",
                   "left_side": "3 months ago", "right_side": "3 months"})  # fmt: skip
    assert b == Bounds(datetime(2023, 12, 15), datetime(2024, 3, 15))
    months = date_buckets("x", "month", b, Calendar(), on_buckets=False)
    assert months == [datetime(2023, 12, 1), datetime(2024, 1, 1), datetime(2024, 2, 1),
                      datetime(2024, 3, 1)]  # fmt: skip


def test_on_or_after_and_before_in_a_composite_meet() -> None:
    b = bounds_of({"type": "composite", "conjunction": "AND", "filters": [
        {"type": "date", "kind": "ON_OR_AFTER", "left_side": "2024-02-10"},
        {"type": "date", "kind": "BEFORE", "right_side": "2024-02-13"},
    ]})  # fmt: skip
    assert b == Bounds(datetime(2024, 2, 10), datetime(2024, 2, 13))


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "date", "kind": "ON_OR_AFTER", "left_side": "2024-02-10"},
        {"type": "date", "kind": "BETWEEN", "left_side": "2024-01", "right_side": "2024-03",
         "is_negative": True},
        {"type": "composite", "conjunction": "OR", "filters": [
            {"type": "date", "kind": "BEFORE", "right_side": "2024-01-01"},
            {"type": "date", "kind": "ON_OR_AFTER", "left_side": "2024-02-01"}]},
        {"type": "date", "kind": "IS_ON_DAY_OF_WEEK", "values": ["monday"]},
    ],
)  # fmt: skip
def test_open_negated_or_alternative_ranges_bound_nothing_on_a_side(obj: dict[str, Any]) -> None:
    b = bounds_of(obj)
    assert b.start is None or b.end is None


def test_weeks_start_on_the_calendars_day() -> None:
    b = Bounds(datetime(2024, 3, 1), datetime(2024, 3, 20))
    sundays = date_buckets("x", "week", b, Calendar(week_start=6), on_buckets=False)
    assert sundays == [datetime(2024, 2, 25), datetime(2024, 3, 3), datetime(2024, 3, 10),
                       datetime(2024, 3, 17)]  # fmt: skip
    assert all(d.weekday() == 6 for d in sundays)


def test_a_filter_on_the_buckets_keeps_only_buckets_inside() -> None:
    b = Bounds(datetime(2024, 1, 15), datetime(2024, 3, 1))
    assert date_buckets("x", "month", b, Calendar(), on_buckets=True) == [datetime(2024, 2, 1)]
    assert date_buckets("x", "month", b, Calendar(), on_buckets=False) == [
        datetime(2024, 1, 1), datetime(2024, 2, 1),
    ]  # fmt: skip


# ---------------------------------------------------------------- compiled SQL


def test_an_unbounded_date_fill_is_skipped_with_a_warning(tpch_model: SemanticModel) -> None:
    q = query([f"{DATE}[month]", "orders.count"], [f"{DATE}[month]"])
    q["filters"] = {DATE: {"type": "date", "kind": "ON_OR_AFTER", "left_side": "1998-01-01"}}
    compiled = compile_query(tpch_model, q, now=NOW)
    plain = compile_query(tpch_model, {k: v for k, v in q.items() if k != "fill_fields"}, now=NOW)
    assert compiled.sql == plain.sql
    assert len(compiled.warnings) == 1
    assert "'orders.o_orderdate[month]' was not filled" in compiled.warnings[0]
    assert "unbounded" in compiled.warnings[0]
    assert plain.warnings == ()


def test_relative_bounds_fill_the_buckets_of_that_now(tpch_model: SemanticModel) -> None:
    q = query([f"{DATE}[month]", "orders.count"], [f"{DATE}[month]"])
    q["filters"] = {DATE: {"type": "date", "kind": "TIME_FOR_INTERVAL_DURATION",
                           "left_side": "3 months ago", "right_side": "3 months"}}  # fmt: skip
    sql = compile_query(tpch_model, q, dialect="postgres", now=NOW).sql
    assert filled_values(sql, "postgres") == [
        "2023-12-01",
        "2024-01-01",
        "2024-02-01",
        "2024-03-01",
    ]


def test_fixed_domains_fill_every_value(tpch_model: SemanticModel) -> None:
    q = query([f"{DATE}[day_of_week_name]", "orders.count"], [f"{DATE}[day_of_week_name]"])
    sql = compile_query(tpch_model, q, dialect="duckdb", now=NOW).sql
    assert filled_values(sql, "duckdb") == [
        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
    ]  # fmt: skip
    q = query(["orders.o_orderstatus", "orders.count"], ["orders.o_orderstatus"])
    sql = compile_query(tpch_model, q, dialect="duckdb", now=NOW).sql
    assert filled_values(sql, "duckdb") == ["F", "O", "P"]


def test_a_sort_by_an_order_by_field_is_refused() -> None:
    q = query(
        ["orders.o_orderstatus", "orders.priority_by_rank", "orders.count"],
        ["orders.o_orderstatus"],
        sorts=[{"column_name": "orders.priority_by_rank"}],
    )
    del q["join_paths_from_topic_name"]
    q["table"] = "orders"
    with pytest.raises(NotSupported, match="sorts by a field's order_by_field"):
        compile_query(special_model(), q, now=NOW)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_renders_a_fill(tpch_model: SemanticModel, dialect: str) -> None:
    q = query(
        [f"{DATE}[week]", "orders.o_orderstatus", "orders.count", "customer.count"],
        [f"{DATE}[week]", "orders.o_orderstatus"],
        filters=between("1995-01-01", "1995-03-01"),
        sorts=[{"column_name": f"{DATE}[week]"}],
        limit=50,
    )  # the customer count fans out: the grouped (CTE) plan is wrapped too
    sql = compile_query(tpch_model, q, dialect=dialect, now=NOW).sql
    tree = sqlglot.parse_one(sql, read=dialect)
    assert tree.args["limit"] is not None and tree.args["order"] is not None
    assert {"$omni_fill_base", "$omni_fill_frame"} <= {c.alias for c in tree.find_all(exp.CTE)}


def test_hour_buckets_are_timestamps_midnight_included() -> None:
    b = Bounds(datetime(2024, 3, 1, 22), datetime(2024, 3, 2, 2))
    hours = date_buckets("x", "hour", b, Calendar(), on_buckets=False)
    assert [h.hour for h in hours] == [22, 23, 0, 1]
    literals = date_literals(hours, "hour")
    assert {lit.to.this for lit in literals if isinstance(lit, exp.Cast)} == {
        exp.DataType.Type.TIMESTAMP
    }
    assert literals[2].sql() == "CAST('2024-03-02 00:00:00' AS TIMESTAMP)"
    assert date_literals([datetime(2024, 3, 2)], "date")[0].sql() == "CAST('2024-03-02' AS DATE)"


def test_several_fills_are_capped_together(tpch_model: SemanticModel) -> None:
    grains = ["date", "day_of_week_num", "month_num", "quarter_of_year"]
    fields = [f"{DATE}[{g}]" for g in grains]
    q = query([*fields, "orders.count"], fields, filters=between("1993-01-01", "1996-01-01"))
    with pytest.raises(InvalidQuery, match=r"1,095 x 7 x 12 x 4 = 367,920 value combinations"):
        compile_query(tpch_model, q, now=NOW)
    q = query(
        [*fields[:3], "orders.count"], fields[:3], filters=between("1993-01-01", "1996-01-01")
    )
    assert compile_query(tpch_model, q, now=NOW).warnings == ()
