"""The calendar (``week_start_day``, ``fiscal_month_offset``): grains computed on DuckDB for
every day of four years against a reference written in Python from Omni's definitions, the
date grammar's weeks and fiscal periods, and every new construct rendered for all seven
dialects and parsed back. Rows on TPC-H against hand-written SQL:
tests/engines/test_calendar_rows.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from assay.errors import InvalidQuery
from assay.semantic.calendar import Calendar
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.dates import parse_span
from assay.semantic.filters import filter_condition, parse_json_filter, parse_yaml_filter
from assay.semantic.loader import build_model
from assay.semantic.timeframes import grain_expression

TS = exp.column("ts", table="t")
DAYS = [date(1995, 1, 1) + timedelta(days=i) for i in range(4 * 366)]
WEEK_STARTS = range(7)
OFFSETS = (-11, -3, -1, 0, 1, 3, 10, 11)


@pytest.fixture(scope="module")
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT CAST(d AS DATE) AS ts FROM UNNEST(?::DATE[]) AS u(d)", [DAYS]
    )
    yield con
    con.close()


def by_day(db: duckdb.DuckDBPyConnection, grain: str, calendar: Calendar) -> dict[date, Any]:
    sql = grain_expression(TS, grain, "duckdb", calendar).sql(dialect="duckdb")
    rows = db.execute(f"SELECT t.ts, {sql} FROM t").fetchall()
    return {d: v.date() if isinstance(v, datetime) else v for d, v in rows}


# Omni's definitions, written out by hand: a date's fiscal year is the year of the date moved
# forward by the offset in months (11: "FY Month 1 of 2025 = Feb 2024").
def fiscal_month_index(d: date, offset: int) -> int:
    return d.year * 12 + d.month - 1 + offset


def fiscal_year(d: date, offset: int) -> int:
    return fiscal_month_index(d, offset) // 12


def fiscal_quarter(d: date, offset: int) -> str:
    return f"{fiscal_year(d, offset)}-Q{fiscal_month_index(d, offset) % 12 // 3 + 1}"


def day_of_fiscal_quarter(d: date, offset: int) -> int:
    index = fiscal_month_index(d, offset)
    first = index - index % 3 - offset
    return (d - date(first // 12, first % 12 + 1, 1)).days + 1


@pytest.mark.parametrize("week_start", WEEK_STARTS)
def test_weeks_start_on_the_day_set(db: duckdb.DuckDBPyConnection, week_start: int) -> None:
    calendar = Calendar(week_start=week_start)
    weeks = by_day(db, "week", calendar)
    numbers = by_day(db, "day_of_week_num", calendar)
    for d in DAYS:
        days_in = (d.weekday() - week_start) % 7
        assert weeks[d] == d - timedelta(days=days_in), d
        assert numbers[d] == days_in + 1, d
    # week_of_year stays ISO whatever the week start (as Looker's, which Omni's copies)
    iso = by_day(db, "week_of_year", calendar)
    assert all(iso[d] == d.isocalendar().week for d in DAYS)


@pytest.mark.parametrize("offset", OFFSETS)
def test_fiscal_grains_follow_the_offset(db: duckdb.DuckDBPyConnection, offset: int) -> None:
    calendar = Calendar(fiscal_month_offset=offset)
    years = by_day(db, "fiscal_year", calendar)
    quarters = by_day(db, "fiscal_quarter", calendar)
    days = by_day(db, "day_of_quarter", calendar)
    for d in DAYS:
        assert years[d] == fiscal_year(d, offset), d
        assert quarters[d] == fiscal_quarter(d, offset), d
        assert days[d] == day_of_fiscal_quarter(d, offset), d


@pytest.mark.parametrize(
    ("offset", "day", "grain", "expected"),
    [
        (11, "2024-02-01", "fiscal_year", 2025),  # "FY Month 1 of 2025 = Feb 2024"
        (11, "2024-01-31", "fiscal_year", 2024),
        (-1, "2024-02-01", "fiscal_year", 2024),  # "FY Month 1 of 2024 = Feb 2024"
        (-1, "2024-01-31", "fiscal_year", 2023),
        (11, "2024-02-01", "fiscal_quarter", "2025-Q1"),
        (10, "2024-03-01", "fiscal_quarter", "2025-Q1"),  # "March 1 start"
        (10, "2024-02-29", "fiscal_quarter", "2024-Q4"),
        (11, "2024-02-01", "day_of_quarter", 1),
        (11, "2024-04-30", "day_of_quarter", 90),
    ],
)
def test_omni_documented_fiscal_examples(offset: int, day: str, grain: str, expected: Any) -> None:
    """docs.omni.co/modeling/models/fiscal-month-offset: 11 and -1 both start in February, 10
    in March."""
    sql = grain_expression(TS, grain, "duckdb", Calendar(fiscal_month_offset=offset)).sql("duckdb")
    con = duckdb.connect()
    try:
        row = con.execute(f"SELECT {sql} FROM (SELECT DATE '{day}' AS ts) t").fetchone()
    finally:
        con.close()
    assert row == (expected,)


def test_millisecond_truncates(db: duckdb.DuckDBPyConnection) -> None:
    sql = grain_expression(TS, "millisecond", "duckdb").sql(dialect="duckdb")
    row = db.execute(f"SELECT {sql} FROM (SELECT TIMESTAMP '2024-03-14 15:09:26.987654' AS ts) t")
    assert row.fetchone() == (datetime(2024, 3, 14, 15, 9, 26, 987000),)


# ---------------------------------------------------------------- the date grammar

WEDNESDAY = datetime(1995, 3, 15, 10, 30)


@pytest.mark.parametrize(
    ("week_start", "start"),
    [(0, date(1995, 3, 13)), (6, date(1995, 3, 12)), (2, date(1995, 3, 15)), (3, date(1995, 3, 9))],
)
def test_this_week_starts_on_the_day_set(week_start: int, start: date) -> None:
    span = parse_span("this week", WEDNESDAY, Calendar(week_start=week_start))
    assert (span.start.date(), span.end.date()) == (start, start + timedelta(days=7))
    last = parse_span("last week", WEDNESDAY, Calendar(week_start=week_start))
    assert last.start.date() == start - timedelta(days=7)
    complete = parse_span("2 complete weeks ago", WEDNESDAY, Calendar(week_start=week_start))
    assert complete.start.date() == start - timedelta(days=14)


@pytest.mark.parametrize(
    ("text", "offset", "start", "end"),
    [
        ("FY1996", 11, date(1995, 2, 1), date(1996, 2, 1)),
        ("FY1995", -1, date(1995, 2, 1), date(1996, 2, 1)),
        ("FY1995", 0, date(1995, 1, 1), date(1996, 1, 1)),
        ("fy 1995", 3, date(1994, 10, 1), date(1995, 10, 1)),
        ("FY1995-Q2", 11, date(1994, 5, 1), date(1994, 8, 1)),
        ("FY1995 Q4", -1, date(1995, 11, 1), date(1996, 2, 1)),
        ("this fiscal year", 11, date(1995, 2, 1), date(1996, 2, 1)),
        ("last fiscal year", 11, date(1994, 2, 1), date(1995, 2, 1)),
        ("this fiscal quarter", 11, date(1995, 2, 1), date(1995, 5, 1)),
        ("last fiscal quarter", 11, date(1994, 11, 1), date(1995, 2, 1)),
        ("next fiscal quarter", 10, date(1995, 6, 1), date(1995, 9, 1)),
        ("this fiscal quarter", 0, date(1995, 1, 1), date(1995, 4, 1)),
        ("1 complete fiscal year ago", -1, date(1994, 2, 1), date(1995, 2, 1)),
    ],
)
def test_fiscal_periods_in_the_grammar(text: str, offset: int, start: date, end: date) -> None:
    span = parse_span(text, WEDNESDAY, Calendar(fiscal_month_offset=offset))
    assert (span.start.date(), span.end.date()) == (start, end)


def test_fiscal_span_matches_the_fiscal_year_grain() -> None:
    """FY<n> holds exactly the days whose fiscal_year is n, for every offset."""
    for offset in OFFSETS:
        span = parse_span("FY1996", WEDNESDAY, Calendar(fiscal_month_offset=offset))
        inside = [d for d in DAYS if span.start.date() <= d < span.end.date()]
        assert inside == [d for d in DAYS if fiscal_year(d, offset) == 1996], offset


def test_day_of_week_filter_names_days_and_counts_numbers_from_the_week_start() -> None:
    sunday_weeks = Calendar(week_start=6)
    name = parse_json_filter(
        {"type": "date", "kind": "IS_ON_DAY_OF_WEEK", "values": ["sunday"]}, where="f"
    )
    number = parse_yaml_filter({"day_of_week": 1}, where="f")
    assert name is not None
    con = duckdb.connect()
    try:
        for f in (name, number):
            cond = filter_condition(f, TS, now=WEDNESDAY, calendar=sunday_weeks).sql("duckdb")
            sunday = con.execute(
                f"SELECT {cond} FROM (SELECT DATE '1995-03-12' AS ts) t"
            ).fetchone()
            monday = con.execute(
                f"SELECT {cond} FROM (SELECT DATE '1995-03-13' AS ts) t"
            ).fetchone()
            assert sunday == (True,) and monday == (False,)
    finally:
        con.close()


def test_day_of_quarter_filters() -> None:
    f = parse_yaml_filter({"day_of_quarter": [1, 2]}, where="f")
    cond = filter_condition(f, TS, now=WEDNESDAY, calendar=Calendar(fiscal_month_offset=11))
    con = duckdb.connect()
    try:
        sql = cond.sql("duckdb")
        hits = [
            d
            for (d,) in con.execute(
                f"SELECT ts FROM (SELECT UNNEST(?::DATE[]) AS ts) t WHERE {sql}", [DAYS]
            ).fetchall()
        ]
    finally:
        con.close()
    assert hits == [d for d in DAYS if day_of_fiscal_quarter(d, 11) in (1, 2)]
    assert {d.month for d in hits} == {2, 5, 8, 11}


# ---------------------------------------------------------------- every dialect


CALENDARS = [Calendar(), Calendar(week_start=6, fiscal_month_offset=11), Calendar(2, -1)]
NEW = ("week", "day_of_week_num", "millisecond", "day_of_quarter", "fiscal_year", "fiscal_quarter")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("grain", NEW)
@pytest.mark.parametrize("calendar", CALENDARS, ids=str)
def test_new_constructs_render_and_reparse(dialect: str, grain: str, calendar: Calendar) -> None:
    sql = grain_expression(TS, grain, dialect, calendar).sql(dialect=dialect)
    assert "t.ts" in sql
    sqlglot.parse_one(f"SELECT {sql} FROM t", read=dialect)


# ---------------------------------------------------------------- the model


def model_files(**extra: str) -> dict[str, str]:
    files = {
        "model": "name: cal\nweek_start_day: Sunday\nfiscal_month_offset: 11\n",
        "orders.view": (
            "table_name: orders\n"
            "dimensions:\n"
            "  o_orderkey: {primary_key: true}\n"
            "  o_orderdate: {}\n"
            "  monday_date: {sql: '${o_orderdate}', week_start_day: monday}\n"
            "measures:\n"
            "  count: {aggregate_type: count}\n"
            "  sunday_orders: {aggregate_type: count, filters: {o_orderdate: {day_of_week: 1}}}\n"
        ),
        "orders.topic": "base_view: orders\nweek_start_day: wednesday\n",
    }
    files.update(extra)
    return files


def test_the_most_specific_week_start_wins() -> None:
    model = build_model(model_files(), name="cal")
    q = {"fields": ["orders.o_orderdate[week]", "orders.monday_date[week]"], "table": "orders"}
    sql = compile_query(model, q, dialect="duckdb").sql
    assert "INTERVAL (-6) DAY" in sql  # the model's Sunday
    assert sql.count("DATE_TRUNC('WEEK'") == 2 and "INTERVAL (-2) DAY" not in sql
    topical = compile_query(
        model, {**q, "join_paths_from_topic_name": "orders"}, dialect="duckdb"
    ).sql
    assert "INTERVAL (-2) DAY" in topical  # the topic's Wednesday
    assert "INTERVAL (-6) DAY" not in topical  # the dimension's Monday beats both


def test_a_topic_week_start_reaches_measure_filters() -> None:
    model = build_model(model_files(), name="cal")
    q = {"fields": ["orders.sunday_orders"], "table": "orders"}
    plain = compile_query(model, q, dialect="duckdb").sql
    topical = compile_query(
        model, {**q, "join_paths_from_topic_name": "orders"}, dialect="duckdb"
    ).sql
    assert "(ISODOW(orders.o_orderdate)) % 7 + 1 = 1" in plain  # Sunday 1: the model's
    assert "(ISODOW(orders.o_orderdate) + 4) % 7 + 1 = 1" in topical  # Wednesday 1: the topic's


def test_fiscal_grains_need_the_offset() -> None:
    model = build_model(model_files(model="name: cal\n"), name="cal")
    q = {"fields": ["orders.o_orderdate[fiscal_year]", "orders.count"], "table": "orders"}
    compiled = compile_query(model, q, dialect="duckdb")
    assert compiled.missing_fields == ("orders.o_orderdate[fiscal_year]",)
    with pytest.raises(InvalidQuery):
        compile_query(model, {"fields": ["orders.o_orderdate[fiscal_quarter]"]}, dialect="duckdb")


def test_grain_types_in_the_summary() -> None:
    model = build_model(model_files(), name="cal")
    fields = ["orders.o_orderdate[fiscal_year]", "orders.o_orderdate[fiscal_quarter]",
              "orders.o_orderdate[day_of_quarter]", "orders.o_orderdate[millisecond]"]  # fmt: skip
    compiled = compile_query(model, {"fields": fields, "table": "orders"}, dialect="duckdb")
    assert [f.data_type for f in compiled.fields] == ["NUMBER", "STRING", "NUMBER", "TIMESTAMP"]
