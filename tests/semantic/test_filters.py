"""Filters (``assay.semantic.filters``): both syntaxes read into ``Filter``, and the SQL each
condition becomes, rendered for DuckDB *and run* on small in-memory tables with NULL rows.

The clock is fixed: ``NOW`` is Monday 2026-11-23 10:30, so "last month" is October 2026 and
"30 days ago" + "30 days" is [2026-10-24, 2026-11-23).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import duckdb
import pytest
import yaml
from sqlglot import exp

from assay.semantic.filters import (
    DATE_KINDS,
    NUMBER_KINDS,
    STRING_KINDS,
    YAML_OPERATORS,
    Filter,
    FilterError,
    depends_on_clock,
    filter_condition,
    parse_json_filter,
    parse_yaml_filter,
)

NOW = datetime(2026, 11, 23, 10, 30)
WHERE = "query.filters['orders.status']"

# ---------------------------------------------------------------- the tables

STRINGS = {
    1: "Alice",
    2: "alice",
    3: "Bob",
    4: "O'Brien",
    5: "50% off",
    6: "5000 off",
    7: "a_b",
    8: "axb",
    9: "",
    10: None,
    11: "ALICE smith",
}
NUMBERS = {1: -2.5, 2: 0, 3: 1, 4: 5, 5: 10, 6: 10.5, 7: None}
# id: (DATE, TIMESTAMP). Weekdays: 1 Mon, 2 Thu, 3 Sun, 4 Mon, 5 Thu, 6 Fri, 7 Sat, 8 Sat,
# 9 Sun, 10 Sun, 11 Mon (today).
DATES: dict[int, tuple[str | None, str | None]] = {
    1: ("2024-03-11", "2024-03-11 08:00:00"),
    2: ("2024-03-14", "2024-03-14 15:09:26"),
    3: ("2024-03-31", "2024-03-31 23:59:59"),
    4: ("2024-04-01", "2024-04-01 00:00:00"),
    5: ("2026-10-01", "2026-10-01 00:00:00"),
    6: ("2026-10-23", "2026-10-23 23:59:59"),
    7: ("2026-10-24", "2026-10-24 00:00:00"),
    8: ("2026-10-31", "2026-10-31 12:00:00"),
    9: ("2026-11-01", "2026-11-01 00:00:00"),
    10: ("2026-11-22", "2026-11-22 23:59:59"),
    11: ("2026-11-23", "2026-11-23 10:00:00"),
    12: (None, None),
}
BOOLS = {1: True, 2: False, 3: None}
ALL_STRINGS = set(STRINGS)
ALL_NUMBERS = set(NUMBERS)
ALL_DATES = set(DATES)


@pytest.fixture(scope="module")
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute("CREATE TABLE strs (id INTEGER, s VARCHAR)")
    con.executemany("INSERT INTO strs VALUES (?, ?)", list(STRINGS.items()))
    con.execute("CREATE TABLE nums (id INTEGER, n DOUBLE)")
    con.executemany("INSERT INTO nums VALUES (?, ?)", list(NUMBERS.items()))
    con.execute("CREATE TABLE dts (id INTEGER, d DATE, ts TIMESTAMP)")
    con.executemany(
        "INSERT INTO dts VALUES (?, CAST(? AS DATE), CAST(? AS TIMESTAMP))",
        [(i, d, ts) for i, (d, ts) in DATES.items()],
    )
    con.execute("CREATE TABLE bools (id INTEGER, b BOOLEAN)")
    con.executemany("INSERT INTO bools VALUES (?, ?)", list(BOOLS.items()))
    yield con
    con.close()


TABLE_OF = {"s": "strs", "n": "nums", "d": "dts", "ts": "dts", "b": "bools"}


def render(f: Filter, column: str = "s", *, now: datetime = NOW) -> str:
    return filter_condition(f, exp.column(column, table="t"), now=now).sql(dialect="duckdb")


def run(db: duckdb.DuckDBPyConnection, f: Filter, column: str, *, now: datetime = NOW) -> set[int]:
    """The ids of the rows of ``column``'s table that the condition keeps."""
    cond = render(f, column, now=now)
    rows = db.execute(f"SELECT id FROM {TABLE_OF[column]} AS t WHERE {cond}").fetchall()
    return {r[0] for r in rows}


def jf(**obj: Any) -> Filter:
    f = parse_json_filter(obj, where=WHERE)
    assert f is not None
    return f


def yf(text: str) -> Filter:
    return parse_yaml_filter(yaml.safe_load(text), where="dimensions.status.filters")


# ================================================================ JSON filters: reading


@pytest.mark.parametrize("kind", STRING_KINDS)
def test_json_every_string_kind_is_read(kind: str) -> None:
    values = [] if kind == "IS_EMPTY" else ["a"]
    f = jf(type="string", kind=kind, values=values)
    assert (f.type, f.kind, f.values) == ("string", kind, tuple(values))


@pytest.mark.parametrize("kind", NUMBER_KINDS)
def test_json_every_number_kind_is_read(kind: str) -> None:
    values = ["1", 2] if kind == "BETWEEN" else ["42"]
    f = jf(type="number", kind=kind, values=values)
    assert (f.type, f.kind, f.values) == ("number", kind, tuple(values))


@pytest.mark.parametrize("kind", DATE_KINDS)
def test_json_every_date_kind_is_read(kind: str) -> None:
    if kind.startswith("IS_"):
        obj: dict[str, Any] = {"values": ["1"]}
    elif kind == "TIME_FOR_INTERVAL_DURATION":
        obj = {"left_side": "30 days ago", "right_side": "30 days", "ui_type": "PAST"}
    else:
        obj = {"left_side": "2024-01-01", "right_side": "2024-02-01"}
    f = jf(type="date", kind=kind, **obj)
    assert (f.type, f.kind) == ("date", kind)
    assert filter_condition(f, exp.column("d"), now=NOW) is not None


def test_contract_date_kinds_are_all_known() -> None:
    contract = {
        "BETWEEN", "ON_OR_AFTER", "BEFORE", "TIME_FOR_INTERVAL_DURATION",
        "TIME_FOR_UNIT_DURATION", "IS_ON_DAY_OF_WEEK", "IS_ON_DAY_OF_MONTH",
        "IS_ON_DAY_OF_YEAR", "IS_IN_MONTH_OF_YEAR", "IS_IN_QUARTER_OF_YEAR",
        "IS_IN_WEEK_OF_YEAR", "IS_AT_HOUR_OF_DAY",
    }  # fmt: skip
    # IS_ON_DAY_OF_QUARTER and QUARTER_OFFSET are in the contract but not implemented.
    assert contract <= set(DATE_KINDS)


def test_json_string_defaults() -> None:
    f = jf(type="string", values=["a", "b"])
    assert f == Filter("string", "EQUALS", ("a", "b"))


def test_json_kind_is_case_insensitive_and_scalar_values_are_wrapped() -> None:
    f = jf(type="string", kind="contains", values="x", case_insensitive=True, is_negative=True)
    assert f == Filter("string", "CONTAINS", ("x",), is_negative=True, case_insensitive=True)


def test_json_numbers_as_strings_or_numbers() -> None:
    f = jf(type="number", kind="BETWEEN", values=["1", 2.5], is_inclusive=True)
    assert f.values == ("1", 2.5)
    assert f.is_inclusive is True
    assert render(f, "n") == "t.n >= 1 AND t.n <= 2.5"


def test_json_date_sides() -> None:
    f = jf(type="date", kind="BETWEEN", left_side="2024-01-01", right_side="2024-02-01")
    assert (f.left_side, f.right_side, f.values) == ("2024-01-01", "2024-02-01", ())
    # Empty sides count as absent.
    g = jf(type="date", kind="BEFORE", values=["2024-01-01"], left_side="", right_side="")
    assert (g.left_side, g.right_side) == (None, None)


def test_json_boolean() -> None:
    assert jf(type="boolean", is_negative=False) == Filter("boolean")
    assert jf(type="boolean", is_negative=True) == Filter("boolean", is_negative=True)
    assert jf(type="boolean", is_negative=True, treat_nulls_as_false=True) == Filter(
        "boolean", is_negative=True, treat_nulls_as_false=True
    )


@pytest.mark.parametrize("obj", [{"type": "boolean", "is_negative": None}, {"type": "boolean"}])
def test_json_boolean_with_null_is_negative_is_ignored(obj: dict[str, Any]) -> None:
    assert parse_json_filter(obj, where=WHERE) is None


def test_json_null() -> None:
    assert jf(type="null") == Filter("null")
    assert jf(type="null", is_negative=True) == Filter("null", is_negative=True)


def test_json_composite() -> None:
    f = jf(
        type="composite",
        conjunction="or",
        is_negative=True,
        filters=[
            {"type": "string", "kind": "EQUALS", "values": ["a"]},
            {"type": "boolean", "is_negative": None},  # ignored, as Omni does
            {"type": "null"},
        ],
    )
    assert f.conjunction == "OR"
    assert f.is_negative is True
    assert f.filters == (Filter("string", "EQUALS", ("a",)), Filter("null"))
    assert parse_json_filter({"type": "composite", "filters": []}, where=WHERE) is None
    assert not jf(type="null").is_noop


def test_json_unknown_keys_are_ignored() -> None:
    f = jf(
        type="string", kind="EQUALS", values=["a"], cancel_query_filter=False,
        ignore_if_unjoinable=True, ui_type="X",
    )  # fmt: skip
    assert f == Filter("string", "EQUALS", ("a",))


# ---------------------------------------------------------------- JSON filters: errors


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("complete", "a filter must be a typed object"),
        ("last 90 days", "not 'last 90 days'"),
        (42, "a filter must be a typed object"),
        (None, "a filter must be a typed object"),
        (["a"], "a filter must be a typed object"),
        ({"type": "strng", "values": ["a"]},
         "unknown filter type 'strng'. Did you mean \"string\"?"),
        ({"type": "numbr", "values": ["1"]}, 'Did you mean "number"?'),
        ({"kind": "EQUALS", "values": ["a"]}, "unknown filter type None"),
        ({"type": "string", "kind": "EQUAL", "values": ["a"]},
         "unknown string filter kind 'EQUAL'. Did you mean \"EQUALS\"?"),
        ({"type": "number", "kind": "GREATR_THAN", "values": ["1"]},
         'Did you mean "GREATER_THAN"'),
        ({"type": "date", "kind": "IS_ON_DAY_OF_WEAK", "values": ["monday"]},
         'Did you mean "IS_ON_DAY_OF_WEEK"'),
        ({"type": "number", "kind": "CONTAINS", "values": ["1"]},
         "unknown number filter kind 'CONTAINS'"),
        ({"type": "number", "kind": "EQUALS", "values": ["abc"]}, "'abc' is not a number"),
        ({"type": "number", "kind": "GREATER_THAN", "values": ["1.2.3"]}, "is not a number"),
        ({"type": "number", "kind": "EQUALS", "values": [True]}, "True is not a number"),
        ({"type": "number", "kind": "EQUALS", "values": [None]}, "None is not a number"),
        ({"type": "number", "kind": "EQUALS", "values": ["NaN"]}, "is not a finite number"),
        ({"type": "number", "kind": "EQUALS", "values": ["Infinity"]}, "not a finite number"),
        ({"type": "number", "kind": "BETWEEN", "values": ["1"]},
         "BETWEEN needs exactly two values, got 1"),
        ({"type": "number", "kind": "BETWEEN", "values": [1, 2, 3]}, "got 3"),
        ({"type": "number", "kind": "GREATER_THAN", "values": [1, 2]},
         "GREATER_THAN needs exactly one value"),
        ({"type": "number", "kind": "LESS_THAN", "values": []},
         "a number LESS_THAN filter needs at least one value"),
        ({"type": "number", "kind": "EQUALS"}, "a number filter of kind EQUALS needs 'values'"),
        ({"type": "string", "kind": "EQUALS", "values": []},
         "a string EQUALS filter needs at least one value"),
        ({"type": "string", "kind": "CONTAINS", "values": []}, "needs at least one value"),
        ({"type": "string", "kind": "EQUALS"}, "a string filter of kind EQUALS needs 'values'"),
        ({"type": "string", "kind": "IS_EMPTY"}, "needs 'values'"),
        ({"type": "date", "kind": "BEFORE"}, "needs 'values'"),
        ({"type": "date", "kind": "IS_ON_DAY_OF_WEEK", "values": []},
         "IS_ON_DAY_OF_WEEK needs at least one value"),
        ({"type": "date", "kind": "QUERY_OFFSET", "values": ["1"]},
         "QUERY_OFFSET are not supported yet"),
        ({"type": "user_attribute"}, "a user_attribute filter needs 'user_attribute_name'"),
        ({"type": "query", "query": {}},
         "unknown filter type 'query'. Filters of this type are not supported yet."),
        ({"type": "query", "field_name": "a.b", "query_id": "q1"},
         "Filters of this type are not supported yet."),
        ({"type": "composite", "conjunction": "XOR", "filters": []},
         "conjunction must be AND or OR, not 'XOR'"),
        ({"type": "composite"}, "a composite filter needs a 'filters' list"),
        ({"type": "composite", "filters": {"type": "null"}}, "needs a 'filters' list"),
    ],
)  # fmt: skip
def test_json_filter_errors_name_the_place(obj: Any, message: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_json_filter(obj, where=WHERE)
    text = str(info.value)
    assert text.startswith(f"{WHERE}: ")
    assert message in text


def test_json_composite_errors_name_the_nested_place() -> None:
    obj = {"type": "composite", "filters": [{"type": "null"}, "bad"]}
    with pytest.raises(FilterError, match=r"^query\.filters\['orders\.status'\]\.filters\[1\]: "):
        parse_json_filter(obj, where=WHERE)


def test_filter_error_is_a_value_error() -> None:
    assert issubclass(FilterError, ValueError)


def test_json_number_equals_with_no_values_is_refused() -> None:
    with pytest.raises(FilterError, match="needs"):
        parse_json_filter({"type": "number", "kind": "EQUALS", "values": []}, where=WHERE)


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "date", "kind": "BETWEEN", "left_side": "nonsense", "right_side": "2024-01-01"},
        {"type": "date", "kind": "TIME_FOR_INTERVAL_DURATION", "left_side": "30 days ago",
         "right_side": "thirty days"},
        {"type": "date", "kind": "IS_ON_DAY_OF_WEEK", "values": ["mondy"]},
        {"type": "date", "kind": "BETWEEN", "values": []},
    ],
)  # fmt: skip
def test_json_bad_date_filters_are_refused_when_read(obj: dict[str, Any]) -> None:
    with pytest.raises(FilterError, match=r"^query\.filters\['orders\.status'\]: "):
        parse_json_filter(obj, where=WHERE)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"type": "date", "kind": "BETWEEN", "left_side": "nonsense", "right_side": "2024"},
         "cannot read the date"),
        ({"type": "date", "kind": "TIME_FOR_INTERVAL_DURATION", "left_side": "30 days ago",
          "right_side": "thirty days"}, "cannot read the duration"),
        ({"type": "date", "kind": "BETWEEN", "left_side": "2024-01-01"}, "needs right_side"),
        ({"type": "date", "kind": "TIME_FOR_INTERVAL_DURATION", "left_side": "30 days ago"},
         "needs right_side"),
        ({"type": "date", "kind": "BETWEEN", "values": []}, "needs left_side or values"),
        ({"type": "date", "kind": "IS_ON_DAY_OF_WEEK", "values": ["mondy"]},
         "'mondy' is not a valid value for IS_ON_DAY_OF_WEEK. Did you mean \"monday\"?"),
        ({"type": "date", "kind": "IS_IN_MONTH_OF_YEAR", "values": ["Marhc"]},
         'Did you mean "march"?'),
        ({"type": "date", "kind": "IS_ON_DAY_OF_MONTH", "values": ["first"]},
         "is not a valid value for IS_ON_DAY_OF_MONTH"),
    ],
)  # fmt: skip
def test_bad_date_filters_are_refused_when_read_with_the_reason(obj: Any, message: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_json_filter(obj, where=WHERE)
    assert message in str(info.value)


# ================================================================ YAML filters: reading


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{is: complete}", Filter("string", "EQUALS", ("complete",))),
        ("{is: [a, b]}", Filter("string", "EQUALS", ("a", "b"))),
        ("{not: complete}", Filter("string", "EQUALS", ("complete",), is_negative=True)),
        ("{is_not: [a, b]}", Filter("string", "EQUALS", ("a", "b"), is_negative=True)),
        ("{is: null}", Filter("null")),
        ("{is: 'null'}", Filter("null")),
        ("{not: null}", Filter("null", is_negative=True)),
        ("{is_not: null}", Filter("null", is_negative=True)),
        ("{is: 5}", Filter("number", "EQUALS", (5,))),
        ("{is: [1, 2.5]}", Filter("number", "EQUALS", (1, 2.5))),
        ("{is: 0}", Filter("number", "EQUALS", (0,))),
        ("{not: 5}", Filter("number", "EQUALS", (5,), is_negative=True)),
        ("{is: true}", Filter("boolean")),
        ("{is: 'true'}", Filter("boolean")),
        ("{is: ''}", Filter("string", "EQUALS", ("",))),
        ("{is: 2024-03-14}", Filter("date", "TIME_FOR_UNIT_DURATION", left_side="2024-03-14")),
        ("{greater_than: 5}", Filter("number", "GREATER_THAN", (5,))),
        ("{greater_than_or_equal_to: 5}",
         Filter("number", "GREATER_THAN", (5,), is_inclusive=True)),
        ("{less_than: '5'}", Filter("number", "LESS_THAN", ("5",))),
        ("{less_than_or_equal_to: 5}", Filter("number", "LESS_THAN", (5,), is_inclusive=True)),
        ("{between: [1, 10]}", Filter("number", "BETWEEN", (1, 10), is_inclusive=True)),
        ("{not_between: [1, 10]}",
         Filter("number", "BETWEEN", (1, 10), is_inclusive=True, is_negative=True)),
        ("{not_greater_than: 5}", Filter("number", "GREATER_THAN", (5,), is_negative=True)),
        ("{contains: foo}", Filter("string", "CONTAINS", ("foo",))),
        ("{contains: [foo, 12]}", Filter("string", "CONTAINS", ("foo", "12"))),
        ("{not_contains: foo}", Filter("string", "CONTAINS", ("foo",), is_negative=True)),
        ("{starts_with: Foo, case_insensitive: true}",
         Filter("string", "STARTS_WITH", ("Foo",), case_insensitive=True)),
        ("{not_ends_with: x}", Filter("string", "ENDS_WITH", ("x",), is_negative=True)),
        ("{is: Foo, case_insensitive: true}",
         Filter("string", "EQUALS", ("Foo",), case_insensitive=True)),
        ("{contains: Foo, case_insensitive: false}", Filter("string", "CONTAINS", ("Foo",))),
        ("{before: 2024-01-01}", Filter("date", "BEFORE", right_side="2024-01-01")),
        ("{before: last month}", Filter("date", "BEFORE", right_side="last month")),
        ("{on_or_after: 2024-01-01 10:00:00}",
         Filter("date", "ON_OR_AFTER", left_side="2024-01-01 10:00:00")),
        ("{not_on_or_after: 2024-01-01}",
         Filter("date", "ON_OR_AFTER", left_side="2024-01-01", is_negative=True)),
        ("{between_dates: [2024-01-01, 2024-02-01]}",
         Filter("date", "BETWEEN", left_side="2024-01-01", right_side="2024-02-01")),
        ("{not_between_dates: [2024-01-01, 2024-02-01]}",
         Filter("date", "BETWEEN", left_side="2024-01-01", right_side="2024-02-01",
                is_negative=True)),
        ("{time_for_duration: [7 days ago, 7 days]}",
         Filter("date", "TIME_FOR_INTERVAL_DURATION", left_side="7 days ago",
                right_side="7 days")),
        ("{day_of_week: [monday, sunday]}",
         Filter("date", "IS_ON_DAY_OF_WEEK", ("monday", "sunday"))),
        ("{not_day_of_week: saturday}",
         Filter("date", "IS_ON_DAY_OF_WEEK", ("saturday",), is_negative=True)),
        ("{day_of_month: 1}", Filter("date", "IS_ON_DAY_OF_MONTH", (1,))),
        ("{day_of_year: 74}", Filter("date", "IS_ON_DAY_OF_YEAR", (74,))),
        ("{month_of_year: march}", Filter("date", "IS_IN_MONTH_OF_YEAR", ("march",))),
        ("{quarter_of_year: 2}", Filter("date", "IS_IN_QUARTER_OF_YEAR", (2,))),
        ("{week_of_year: 11}", Filter("date", "IS_IN_WEEK_OF_YEAR", (11,))),
        ("{hour_of_day: 9}", Filter("date", "IS_AT_HOUR_OF_DAY", (9,))),
    ],
)  # fmt: skip
def test_yaml_operators(text: str, expected: Filter) -> None:
    assert yf(text) == expected


def test_yaml_and_or_nesting() -> None:
    f = yf("{or: [{is: a}, {and: [{contains: b}, {not: bc}]}]}")
    assert f == Filter(
        "composite",
        conjunction="OR",
        filters=(
            Filter("string", "EQUALS", ("a",)),
            Filter(
                "composite",
                conjunction="AND",
                filters=(
                    Filter("string", "CONTAINS", ("b",)),
                    Filter("string", "EQUALS", ("bc",), is_negative=True),
                ),
            ),
        ),
    )


def test_yaml_several_operators_are_anded() -> None:
    f = yf("{greater_than: 1, less_than: 5}")
    assert f == Filter(
        "composite",
        conjunction="AND",
        filters=(Filter("number", "GREATER_THAN", (1,)), Filter("number", "LESS_THAN", (5,))),
    )


def test_yaml_case_insensitive_applies_to_every_string_operator_beside_it() -> None:
    f = yf("{contains: a, not_starts_with: b, case_insensitive: true}")
    assert [s.case_insensitive for s in f.filters] == [True, True]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("complete", "expected {operator: value}, e.g. {is: Complete}; got 'complete'"),
        ("{}", "expected {operator: value}"),
        ("[a, b]", "expected {operator: value}"),
        ("{case_insensitive: true}", "case_insensitive needs another operator beside it"),
        ("{contians: foo}", "unknown filter operator 'contians'. Did you mean \"contains\"?"),
        ("{greater_then: 1}", 'Did you mean "greater_than"'),
        ("{not_foo: 1}", "unknown filter operator 'not_foo'"),
        ("{not_not: x}", "unknown filter operator 'not_not'"),
        ("{and: x}", "'and' takes a non-empty list of conditions"),
        ("{or: {is: a}}", "'or' takes a non-empty list of conditions"),
        ("{between: [1]}", "BETWEEN needs exactly two values, got 1"),
        ("{between: [1, 2, 3]}", "got 3"),
        ("{greater_than: abc}", "'abc' is not a number"),
        ("{less_than: [1, 2]}", "LESS_THAN needs exactly one value"),
        ("{between_dates: [2024-01-01]}", "'between_dates' takes [start, end]"),
        ("{time_for_duration: 7 days}", "'time_for_duration' takes [start, end]"),
        ("{contains: []}", "a string CONTAINS filter needs at least one value"),
        ("{day_of_week: []}", "IS_ON_DAY_OF_WEEK needs at least one value"),
    ],
)
def test_yaml_errors_name_the_place(text: str, message: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_yaml_filter(yaml.safe_load(text), where="views.orders.status")
    assert str(info.value).startswith("views.orders.status")
    assert message in str(info.value)


def test_yaml_nested_error_names_the_path() -> None:
    with pytest.raises(FilterError, match=r"^f\.or\[1\]\.contians: unknown filter operator"):
        parse_yaml_filter(yaml.safe_load("{or: [{is: a}, {contians: b}]}"), where="f")


def test_yaml_operator_list_matches_the_contract() -> None:
    contract = {
        "is", "not", "and", "or", "greater_than", "greater_than_or_equal_to", "less_than",
        "less_than_or_equal_to", "between", "contains", "starts_with", "ends_with",
        "case_insensitive", "before", "on_or_after", "between_dates", "time_for_duration",
        "day_of_week", "day_of_month", "day_of_year", "hour_of_day", "month_of_year",
        "quarter_of_year",
    }  # fmt: skip
    # Not implemented (yet): date_offset_from_query, day_of_quarter, cancel_query_filter,
    # field_name_in_query, field_name_not_in_query.
    assert contract <= set(YAML_OPERATORS)


@pytest.mark.parametrize("text", ["{not_and: [{is: a}]}", "{not_or: [{is: a}, {is: b}]}"])
def test_yaml_not_and_is_refused_or_negated(text: str) -> None:
    try:
        f = yf(text)
    except FilterError:
        return
    assert f.is_negative


def test_yaml_mixed_number_list_is_refused_when_read() -> None:
    with pytest.raises(FilterError, match=r"^w\.is: "):
        parse_yaml_filter({"is": [1, "a"]}, where="w")


# ================================================================ SQL on DuckDB: strings


def test_string_equals_sql(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="string", kind="EQUALS", values=["Alice"])
    assert render(f) == "t.s = 'Alice'"
    assert run(db, f, "s") == {1}


def test_string_equals_many_is_in(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="string", kind="EQUALS", values=["Alice", "Bob", "nobody"])
    assert render(f) == "t.s IN ('Alice', 'Bob', 'nobody')"
    assert run(db, f, "s") == {1, 3}


def test_string_equals_empty_string(db: duckdb.DuckDBPyConnection) -> None:
    assert run(db, jf(type="string", values=[""]), "s") == {9}


def test_string_values_that_are_numbers_compare_as_text(db: duckdb.DuckDBPyConnection) -> None:
    assert render(jf(type="string", values=[42])) == "t.s = '42'"


def test_negated_string_keeps_nulls(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="string", kind="EQUALS", values=["Alice"], is_negative=True)
    assert render(f) == "(NOT (t.s = 'Alice') OR t.s IS NULL)"
    assert run(db, f, "s") == ALL_STRINGS - {1}
    assert 10 in run(db, f, "s")  # the NULL row


def test_negated_string_in_keeps_nulls(db: duckdb.DuckDBPyConnection) -> None:
    f = yf("{is_not: [Alice, Bob]}")
    assert run(db, f, "s") == ALL_STRINGS - {1, 3}


def test_case_insensitive_equals(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="string", values=["ALICE"], case_insensitive=True)
    assert render(f) == "LOWER(t.s) = LOWER('ALICE')"
    assert run(db, f, "s") == {1, 2}


def test_contains(db: duckdb.DuckDBPyConnection) -> None:
    assert run(db, jf(type="string", kind="CONTAINS", values=["lic"]), "s") == {1, 2}
    assert run(db, jf(type="string", kind="CONTAINS", values=["lic", "Bo"]), "s") == {1, 2, 3}


def test_contains_case_insensitive(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="string", kind="CONTAINS", values=["ALICE"], case_insensitive=True)
    assert run(db, f, "s") == {1, 2, 11}


def test_contains_percent_is_literal(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="string", kind="CONTAINS", values=["50%"])
    assert "LIKE" not in render(f)
    assert run(db, f, "s") == {5}  # not "5000 off"


def test_contains_underscore_is_literal(db: duckdb.DuckDBPyConnection) -> None:
    assert run(db, jf(type="string", kind="CONTAINS", values=["a_b"]), "s") == {7}  # not "axb"
    assert run(db, jf(type="string", kind="CONTAINS", values=["%"]), "s") == {5}
    assert run(db, jf(type="string", kind="CONTAINS", values=["_"]), "s") == {7}


def test_starts_and_ends_with_are_literal(db: duckdb.DuckDBPyConnection) -> None:
    assert run(db, jf(type="string", kind="STARTS_WITH", values=["50%"]), "s") == {5}
    assert run(db, jf(type="string", kind="STARTS_WITH", values=["a_"]), "s") == {7}
    assert run(db, jf(type="string", kind="ENDS_WITH", values=["_b"]), "s") == {7}
    assert run(db, jf(type="string", kind="ENDS_WITH", values=["% off"]), "s") == {5}
    assert run(db, jf(type="string", kind="STARTS_WITH", values=["A"]), "s") == {1, 11}


def test_starts_with_case_insensitive(db: duckdb.DuckDBPyConnection) -> None:
    f = yf("{starts_with: a, case_insensitive: true}")
    assert run(db, f, "s") == {1, 2, 7, 8, 11}


def test_negated_contains_keeps_nulls(db: duckdb.DuckDBPyConnection) -> None:
    f = yf("{not_contains: o}")
    # Rows with an "o": Bob, 50% off, 5000 off. O'Brien has a capital O only.
    assert run(db, f, "s") == ALL_STRINGS - {3, 5, 6}


def test_sql_like_is_a_pattern(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="string", kind="SQL_LIKE", values=["a_b"])
    assert render(f) == "t.s LIKE 'a_b'"
    assert run(db, f, "s") == {7, 8}
    assert run(db, jf(type="string", kind="SQL_LIKE", values=["A%"]), "s") == {1, 11}


def test_is_empty(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="string", kind="IS_EMPTY", values=[])
    assert render(f) == "(t.s IS NULL OR t.s = '')"
    assert run(db, f, "s") == {9, 10}


def test_is_not_empty_excludes_nulls(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="string", kind="IS_EMPTY", values=[], is_negative=True)
    assert run(db, f, "s") == ALL_STRINGS - {9, 10}


def test_quote_in_a_value_is_a_literal(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="string", values=["O'Brien"])
    assert render(f) == "t.s = 'O''Brien'"
    assert run(db, f, "s") == {4}
    assert run(db, jf(type="string", kind="CONTAINS", values=["'"]), "s") == {4}


@pytest.mark.parametrize(
    "value", ["x' OR '1'='1", "x'; DROP TABLE strs; --", "\\' OR 1=1 --", "Alice' --"]
)
def test_injection_attempts_match_nothing(db: duckdb.DuckDBPyConnection, value: str) -> None:
    for kind in ("EQUALS", "CONTAINS", "STARTS_WITH", "ENDS_WITH"):
        f = jf(type="string", kind=kind, values=[value])
        sql = render(f)
        assert value.replace("'", "''") in sql
        assert run(db, f, "s") == set()
    assert db.execute("SELECT count(*) FROM strs").fetchone() == (len(STRINGS),)


# ================================================================ SQL on DuckDB: numbers


@pytest.mark.parametrize(
    ("obj", "sql", "ids"),
    [
        ({"kind": "EQUALS", "values": ["1"]}, "t.n = 1", {3}),
        ({"kind": "EQUALS", "values": [1, "5"]}, "t.n IN (1, 5)", {3, 4}),
        ({"kind": "EQUALS", "values": ["-2.5"]}, "t.n = -2.5", {1}),
        ({"kind": "EQUALS", "values": [" 10.50 "]}, "t.n = 10.50", {6}),
        ({"kind": "GREATER_THAN", "values": ["5"]}, "t.n > 5", {5, 6}),
        ({"kind": "GREATER_THAN", "values": [5], "is_inclusive": True}, "t.n >= 5", {4, 5, 6}),
        ({"kind": "LESS_THAN", "values": ["0"]}, "t.n < 0", {1}),
        ({"kind": "LESS_THAN", "values": [0], "is_inclusive": True}, "t.n <= 0", {1, 2}),
        ({"kind": "GREATER_THAN", "values": ["1e1"]}, "t.n > 1E+1", {6}),
        # BETWEEN: lower bound inclusive, upper exclusive unless is_inclusive.
        ({"kind": "BETWEEN", "values": ["1", "10"]}, "t.n >= 1 AND t.n < 10", {3, 4}),
        ({"kind": "BETWEEN", "values": [1, 10], "is_inclusive": True},
         "t.n >= 1 AND t.n <= 10", {3, 4, 5}),
        # Negation drops NULL rows for numbers (SQL's reading; documented design).
        ({"kind": "EQUALS", "values": ["5"], "is_negative": True}, "NOT (t.n = 5)",
         ALL_NUMBERS - {4, 7}),
        ({"kind": "BETWEEN", "values": ["1", "10"], "is_negative": True},
         "NOT (t.n >= 1 AND t.n < 10)", {1, 2, 5, 6}),
    ],
)  # fmt: skip
def test_number_filters(
    db: duckdb.DuckDBPyConnection, obj: dict[str, Any], sql: str, ids: set[int]
) -> None:
    f = jf(type="number", **obj)
    assert render(f, "n") == sql
    assert run(db, f, "n") == ids


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("{is: 5}", {4}),
        ("{is: [1, 5]}", {3, 4}),
        ("{not: 5}", ALL_NUMBERS - {4, 7}),
        ("{greater_than: 5}", {5, 6}),
        ("{greater_than_or_equal_to: 5}", {4, 5, 6}),
        ("{less_than: 0}", {1}),
        ("{less_than_or_equal_to: 0}", {1, 2}),
        ("{between: [1, 10]}", {3, 4, 5}),  # YAML between is inclusive on both ends
        ("{not_between: [1, 10]}", {1, 2, 6}),
        ("{greater_than: 0, less_than: 10}", {3, 4}),
        ("{or: [{less_than: 0}, {greater_than: 10}]}", {1, 6}),
        ("{is: null}", {7}),
        ("{not: null}", ALL_NUMBERS - {7}),
    ],
)
def test_yaml_number_filters(db: duckdb.DuckDBPyConnection, text: str, ids: set[int]) -> None:
    assert run(db, yf(text), "n") == ids


def test_number_target_expression_is_parenthesised(db: duckdb.DuckDBPyConnection) -> None:
    target = exp.Add(this=exp.column("n", table="t"), expression=exp.Literal.number(1))
    f = jf(type="number", kind="GREATER_THAN", values=["5"])
    cond = filter_condition(f, target, now=NOW).sql(dialect="duckdb")
    assert cond == "(t.n + 1) > 5"
    rows = db.execute(f"SELECT id FROM nums AS t WHERE {cond}").fetchall()
    assert {r[0] for r in rows} == {4, 5, 6}


def test_filter_condition_does_not_mutate_or_share_the_target() -> None:
    target = exp.column("s", table="t")
    before = target.sql()
    cond = filter_condition(jf(type="string", values=["a"], is_negative=True), target, now=NOW)
    assert target.sql() == before
    assert target.parent is None
    assert all(c is not target for c in cond.find_all(exp.Column))


# ================================================================ SQL on DuckDB: dates


@pytest.mark.parametrize("column", ["d", "ts"])
@pytest.mark.parametrize(
    ("obj", "ids"),
    [
        # BETWEEN is [left, right).
        ({"kind": "BETWEEN", "left_side": "2024-03-11", "right_side": "2024-03-31"}, {1, 2}),
        ({"kind": "BETWEEN", "values": ["2024-03", "2024-04"]}, {1, 2, 3}),
        ({"kind": "BETWEEN", "left_side": "2024 Q1", "right_side": "2024 Q2"}, {1, 2, 3}),
        ({"kind": "BETWEEN", "left_side": "FY2024", "right_side": "FY2025"}, {1, 2, 3, 4}),
        ({"kind": "ON_OR_AFTER", "left_side": "2026-11-01"}, {9, 10, 11}),
        ({"kind": "ON_OR_AFTER", "values": ["yesterday"]}, {10, 11}),
        ({"kind": "BEFORE", "right_side": "2024-04-01"}, {1, 2, 3}),
        ({"kind": "BEFORE", "values": ["2024-04-01"]}, {1, 2, 3}),
        ({"kind": "BEFORE", "left_side": "2024-03-14"}, {1}),
        # Omni's "last 30 days": [2026-10-24, 2026-11-23).
        ({"kind": "TIME_FOR_INTERVAL_DURATION", "left_side": "30 days ago",
          "right_side": "30 days", "ui_type": "PAST"}, {7, 8, 9, 10}),
        ({"kind": "TIME_FOR_INTERVAL_DURATION", "left_side": "2024-03-11",
          "right_side": "1 week"}, {1, 2}),
        ({"kind": "TIME_FOR_INTERVAL_DURATION", "values": ["2026-10-24", "2 days"]}, {7}),
        ({"kind": "TIME_FOR_UNIT_DURATION", "left_side": "2024-03"}, {1, 2, 3}),
        ({"kind": "TIME_FOR_UNIT_DURATION", "left_side": "last month"}, {5, 6, 7, 8}),
        ({"kind": "TIME_FOR_UNIT_DURATION", "left_side": "this month"}, {9, 10, 11}),
        ({"kind": "TIME_FOR_UNIT_DURATION", "left_side": "today"}, {11}),
        ({"kind": "TIME_FOR_UNIT_DURATION", "left_side": "yesterday"}, {10}),
        ({"kind": "TIME_FOR_UNIT_DURATION", "left_side": "this week"}, {11}),
        ({"kind": "TIME_FOR_UNIT_DURATION", "left_side": "last week"}, {10}),
        ({"kind": "TIME_FOR_UNIT_DURATION", "left_side": "2024-03-14"}, {2}),
        ({"kind": "TIME_FOR_UNIT_DURATION", "values": ["2024"]}, {1, 2, 3, 4}),
        # Negated date filters drop NULL rows (documented design).
        ({"kind": "TIME_FOR_UNIT_DURATION", "left_side": "2024-03", "is_negative": True},
         ALL_DATES - {1, 2, 3, 12}),
        ({"kind": "BEFORE", "right_side": "2026-01-01", "is_negative": True},
         {5, 6, 7, 8, 9, 10, 11}),
        # Parts of dates. ISO day numbers: Monday 1 ... Sunday 7.
        ({"kind": "IS_ON_DAY_OF_WEEK", "values": ["monday"]}, {1, 4, 11}),
        ({"kind": "IS_ON_DAY_OF_WEEK", "values": ["Monday"]}, {1, 4, 11}),
        ({"kind": "IS_ON_DAY_OF_WEEK", "values": ["mon"]}, {1, 4, 11}),
        ({"kind": "IS_ON_DAY_OF_WEEK", "values": ["1"]}, {1, 4, 11}),
        ({"kind": "IS_ON_DAY_OF_WEEK", "values": [1]}, {1, 4, 11}),
        ({"kind": "IS_ON_DAY_OF_WEEK", "values": ["7"]}, {3, 9, 10}),
        ({"kind": "IS_ON_DAY_OF_WEEK", "values": ["sunday", "Sat"]}, {3, 7, 8, 9, 10}),
        ({"kind": "IS_ON_DAY_OF_WEEK", "values": ["thursday"], "is_negative": True},
         ALL_DATES - {2, 5, 12}),
        ({"kind": "IS_IN_MONTH_OF_YEAR", "values": ["March"]}, {1, 2, 3}),
        ({"kind": "IS_IN_MONTH_OF_YEAR", "values": ["oct", "november"]},
         {5, 6, 7, 8, 9, 10, 11}),
        ({"kind": "IS_IN_MONTH_OF_YEAR", "values": ["4"]}, {4}),
        ({"kind": "IS_ON_DAY_OF_MONTH", "values": ["1"]}, {4, 5, 9}),
        ({"kind": "IS_ON_DAY_OF_YEAR", "values": ["74"]}, {2}),
        ({"kind": "IS_IN_QUARTER_OF_YEAR", "values": ["2"]}, {4}),
        ({"kind": "IS_IN_WEEK_OF_YEAR", "values": ["11"]}, {1, 2}),
        ({"kind": "IS_IN_WEEK_OF_YEAR", "values": ["13", "14"]}, {3, 4}),
    ],
)  # fmt: skip
def test_date_filters(
    db: duckdb.DuckDBPyConnection, column: str, obj: dict[str, Any], ids: set[int]
) -> None:
    assert run(db, jf(type="date", **obj), column) == ids


def test_date_sql_uses_plain_literals() -> None:
    f = jf(type="date", kind="BETWEEN", left_side="2024-01-01", right_side="2024-02-01")
    assert render(f, "d") == (
        "t.d >= CAST('2024-01-01' AS DATE) AND t.d < CAST('2024-02-01' AS DATE)"
    )
    g = jf(type="date", kind="BETWEEN", values=["2024-01-01 10:00", "2024-02"])
    assert render(g, "ts") == (
        "t.ts >= CAST('2024-01-01 10:00:00' AS TIMESTAMP) AND t.ts < CAST('2024-02-01' AS DATE)"
    )
    h = jf(
        type="date", kind="TIME_FOR_INTERVAL_DURATION", left_side="30 days ago",
        right_side="30 days",
    )  # fmt: skip
    assert render(h, "d") == (
        "t.d >= CAST('2026-10-24' AS DATE) AND t.d < CAST('2026-11-23' AS DATE)"
    )
    assert render(jf(type="date", kind="IS_ON_DAY_OF_WEEK", values=["monday", "7"]), "d") == (
        "ISODOW(t.d) IN (1, 7)"
    )
    assert render(jf(type="date", kind="BEFORE", values=["2024-01-01"]), "d") == (
        "t.d < CAST('2024-01-01' AS DATE)"
    )


def test_time_of_day_precision(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="date", kind="TIME_FOR_UNIT_DURATION", left_side="2024-03-14 15")
    assert run(db, f, "ts") == {2}
    g = jf(type="date", kind="BETWEEN", left_side="2024-03-31 23:59:59", right_side="2024-04-02")
    assert run(db, g, "ts") == {3, 4}
    h = jf(type="date", kind="IS_AT_HOUR_OF_DAY", values=["15"])
    assert run(db, h, "ts") == {2}


def test_relative_dates_follow_now(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(type="date", kind="TIME_FOR_UNIT_DURATION", left_side="last month")
    assert run(db, f, "d", now=datetime(2024, 4, 15)) == {1, 2, 3}
    assert run(db, f, "d", now=datetime(2024, 5, 1)) == {4}


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("{is: 2024-03-14}", {2}),
        ("{before: 2024-04-01}", {1, 2, 3}),
        ("{not_before: 2026-11-22}", {10, 11}),
        ("{on_or_after: 2026-11-01}", {9, 10, 11}),
        ("{on_or_after: 2024-03-14 12:00:00}", ALL_DATES - {1, 12}),
        ("{between_dates: [2024-03-11, 2024-03-31]}", {1, 2}),
        ("{time_for_duration: [30 days ago, 30 days]}", {7, 8, 9, 10}),
        ("{day_of_week: [monday, sunday]}", {1, 3, 4, 9, 10, 11}),
        ("{not_day_of_week: monday}", ALL_DATES - {1, 4, 11, 12}),
        ("{month_of_year: march}", {1, 2, 3}),
        ("{day_of_month: 1}", {4, 5, 9}),
        ("{quarter_of_year: 2}", {4}),
        ("{week_of_year: 11}", {1, 2}),
        ("{day_of_year: 74}", {2}),
        ("{hour_of_day: 15}", {2}),
        ("{is: null}", {12}),
    ],
)
def test_yaml_date_filters(db: duckdb.DuckDBPyConnection, text: str, ids: set[int]) -> None:
    assert run(db, yf(text), "ts") == ids


# ================================================================ booleans, nulls, composites


@pytest.mark.parametrize(
    ("obj", "sql", "ids"),
    [
        ({"is_negative": False}, "t.b = TRUE", {1}),
        ({"is_negative": True}, "t.b = FALSE", {2}),
        ({"is_negative": True, "treat_nulls_as_false": True}, "(t.b = FALSE OR t.b IS NULL)",
         {2, 3}),
        ({"is_negative": False, "treat_nulls_as_false": True}, "t.b = TRUE", {1}),
    ],
)  # fmt: skip
def test_boolean_filters(
    db: duckdb.DuckDBPyConnection, obj: dict[str, Any], sql: str, ids: set[int]
) -> None:
    f = jf(type="boolean", **obj)
    assert render(f, "b") == sql
    assert run(db, f, "b") == ids


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("{is: true}", {1}),
        ("{is: 'true'}", {1}),
        ("{is: null}", {3}),
        ("{not: null}", {1, 2}),
    ],
)
def test_yaml_boolean_filters(db: duckdb.DuckDBPyConnection, text: str, ids: set[int]) -> None:
    assert run(db, yf(text), "b") == ids


@pytest.mark.parametrize(
    ("text", "must_match", "must_not_match"),
    [
        ("{is: false}", {2}, {1, 3}),
        ("{is: 'false'}", {2}, {1, 3}),
        ("{is: falsey}", {2, 3}, {1}),
        ("{not: false}", {1}, {2}),
        ("{not: falsey}", {1}, {2, 3}),
    ],
)
def test_yaml_false_and_falsey(
    db: duckdb.DuckDBPyConnection, text: str, must_match: set[int], must_not_match: set[int]
) -> None:
    ids = run(db, yf(text), "b")
    assert must_match <= ids
    assert not (must_not_match & ids)


def test_yaml_not_true_is_false(db: duckdb.DuckDBPyConnection) -> None:
    ids = run(db, yf("{not: true}"), "b")
    assert 2 in ids
    assert 1 not in ids


def test_null_filters(db: duckdb.DuckDBPyConnection) -> None:
    assert render(jf(type="null")) == "t.s IS NULL"
    assert render(jf(type="null", is_negative=True)) == "NOT t.s IS NULL"
    assert run(db, jf(type="null"), "s") == {10}
    assert run(db, jf(type="null", is_negative=True), "s") == ALL_STRINGS - {10}
    assert run(db, jf(type="null"), "d") == {12}


def test_composite_and(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(
        type="composite",
        conjunction="AND",
        filters=[
            {"type": "number", "kind": "GREATER_THAN", "values": ["0"]},
            {"type": "number", "kind": "LESS_THAN", "values": ["10"]},
        ],
    )
    assert render(f, "n") == "t.n > 0 AND t.n < 10"
    assert run(db, f, "n") == {3, 4}


def test_composite_or(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(
        type="composite",
        conjunction="OR",
        filters=[
            {"type": "number", "kind": "EQUALS", "values": ["1"]},
            {"type": "number", "kind": "GREATER_THAN", "values": ["9"]},
        ],
    )
    assert render(f, "n") == "t.n = 1 OR t.n > 9"
    assert run(db, f, "n") == {3, 5, 6}


def test_composite_negated(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(
        type="composite",
        conjunction="OR",
        is_negative=True,
        filters=[
            {"type": "number", "kind": "EQUALS", "values": ["1"]},
            {"type": "number", "kind": "GREATER_THAN", "values": ["9"]},
        ],
    )
    assert render(f, "n") == "NOT (t.n = 1 OR t.n > 9)"
    assert run(db, f, "n") == {1, 2, 4}


def test_composite_or_with_null(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(
        type="composite",
        conjunction="OR",
        filters=[{"type": "string", "values": ["Bob"]}, {"type": "null"}],
    )
    assert run(db, f, "s") == {3, 10}


def test_composite_nested_and_inside_or(db: duckdb.DuckDBPyConnection) -> None:
    f = yf("{or: [{is: Bob}, {and: [{contains: lic}, {not: alice}]}]}")
    assert run(db, f, "s") == {1, 3}


def test_composite_of_dates(db: duckdb.DuckDBPyConnection) -> None:
    f = jf(
        type="composite",
        conjunction="AND",
        filters=[
            {"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "last month"},
            {"type": "date", "kind": "IS_ON_DAY_OF_WEEK", "values": ["saturday"]},
        ],
    )
    assert run(db, f, "d") == {7, 8}


@pytest.mark.parametrize("which", ["json-nested", "yaml-and-empty", "yaml-or-empty"])
def test_empty_composite_is_a_noop_or_a_filter_error(
    db: duckdb.DuckDBPyConnection, which: str
) -> None:
    try:
        if which == "json-nested":
            f = jf(
                type="composite",
                filters=[
                    {"type": "composite", "filters": []},
                    {"type": "string", "values": ["Bob"]},
                ],
            )
        else:
            f = yf("{and: []}" if which == "yaml-and-empty" else "{or: []}")
        ids = run(db, f, "s")
    except FilterError:
        return
    assert ids in ({3}, ALL_STRINGS)


# ================================================================ other dialects (rendered only)

_PG_PART = {
    "IS_ON_DAY_OF_WEEK": ("monday", "EXTRACT(ISODOW FROM t.d) = 1"),
    "IS_ON_DAY_OF_MONTH": ("1", "EXTRACT(DAY FROM t.d) = 1"),
    "IS_ON_DAY_OF_YEAR": ("74", "EXTRACT(DOY FROM t.d) = 74"),
    "IS_IN_MONTH_OF_YEAR": ("march", "EXTRACT(MONTH FROM t.d) = 3"),
    "IS_IN_QUARTER_OF_YEAR": ("1", "EXTRACT(QUARTER FROM t.d) = 1"),
    "IS_IN_WEEK_OF_YEAR": ("11", "EXTRACT(WEEK FROM t.d) = 11"),
    "IS_AT_HOUR_OF_DAY": ("15", "EXTRACT(HOUR FROM t.d) = 15"),
}


@pytest.mark.parametrize(
    "kind",
    list(_PG_PART),
)
def test_date_part_filters_render_for_postgres(kind: str) -> None:
    value, sql = _PG_PART[kind]
    f = jf(type="date", kind=kind, values=[value])
    cond = filter_condition(f, exp.column("d", table="t"), now=NOW, dialect="postgres")
    assert cond.sql("postgres") == sql


def test_day_of_week_filter_renders_for_mysql() -> None:
    f = jf(type="date", kind="IS_ON_DAY_OF_WEEK", values=["monday"])
    sql = filter_condition(f, exp.column("d", table="t"), now=NOW, dialect="mysql").sql("mysql")
    assert "DAYOFWEEK_ISO" not in sql.upper()


@pytest.mark.parametrize(
    ("dialect", "kind"),
    [
        pytest.param("postgres", "STARTS_WITH"),
        pytest.param(
            "postgres",
            "ENDS_WITH",
        ),
        pytest.param(
            "mysql",
            "STARTS_WITH",
        ),
        pytest.param(
            "mysql",
            "ENDS_WITH",
        ),
    ],
)
def test_prefix_suffix_filters_use_functions_the_dialect_has(dialect: str, kind: str) -> None:
    missing = {"postgres": ("ENDS_WITH",), "mysql": ("STARTS_WITH", "ENDS_WITH")}[dialect]
    f = jf(type="string", kind=kind, values=["x"])
    cond = filter_condition(f, exp.column("s", table="t"), now=NOW, dialect=dialect)
    sql = cond.sql(dialect).upper()
    assert not any(f"{name}(" in sql for name in missing)


# ================================================================ depends_on_clock


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"type": "date", "kind": "BETWEEN", "left_side": "2024-01-01",
          "right_side": "2024-02-01"}, False),
        ({"type": "date", "kind": "BETWEEN", "left_side": "2024-01-01 10:00:00",
          "right_side": "2024/02"}, False),
        ({"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "2024 Q3"}, False),
        ({"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "2024-q3"}, False),
        ({"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "FY2024"}, False),
        ({"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "2024"}, False),
        ({"type": "date", "kind": "BEFORE", "values": ["2024-01-01"]}, False),
        ({"type": "date", "kind": "IS_ON_DAY_OF_WEEK", "values": ["monday"]}, False),
        ({"type": "date", "kind": "IS_IN_MONTH_OF_YEAR", "values": ["march"]}, False),
        ({"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "last month"}, True),
        ({"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "today"}, True),
        ({"type": "date", "kind": "ON_OR_AFTER", "left_side": "yesterday"}, True),
        ({"type": "date", "kind": "BEFORE", "values": ["tomorrow"]}, True),
        ({"type": "date", "kind": "TIME_FOR_INTERVAL_DURATION", "left_side": "30 days ago",
          "right_side": "30 days"}, True),
        ({"type": "date", "kind": "BETWEEN", "left_side": "2024-01-01",
          "right_side": "now"}, True),
        ({"type": "string", "kind": "EQUALS", "values": ["last month"]}, False),
        ({"type": "number", "kind": "EQUALS", "values": ["1"]}, False),
        ({"type": "null"}, False),
        ({"type": "boolean", "is_negative": False}, False),
        ({"type": "composite", "filters": [
            {"type": "null"},
            {"type": "date", "kind": "ON_OR_AFTER", "left_side": "yesterday"}]}, True),
        ({"type": "composite", "filters": [
            {"type": "null"},
            {"type": "date", "kind": "ON_OR_AFTER", "left_side": "2024-01-01"}]}, False),
    ],
)  # fmt: skip
def test_depends_on_clock(obj: dict[str, Any], expected: bool) -> None:
    f = parse_json_filter(obj, where=WHERE)
    assert f is not None
    assert depends_on_clock(f) is expected


def test_depends_on_clock_yaml() -> None:
    assert depends_on_clock(yf("{time_for_duration: [7 days ago, 7 days]}")) is True
    assert depends_on_clock(yf("{between_dates: [2024-01-01, 2024-02-01]}")) is False
    assert depends_on_clock(yf("{or: [{is: a}, {before: last week}]}")) is True


def test_depends_on_clock_absolute_interval() -> None:
    f = jf(
        type="date", kind="TIME_FOR_INTERVAL_DURATION", left_side="2024-01-01",
        right_side="30 days",
    )  # fmt: skip
    assert depends_on_clock(f) is False
