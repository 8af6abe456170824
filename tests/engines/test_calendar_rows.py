"""The calendar on TPC-H: weeks from each start day and fiscal years from several offsets,
grouped and filtered over o_orderdate, equal hand-written SQL row for row on DuckDB and
PostgreSQL (and MariaDB). The hand-written SQL counts months and days with integer arithmetic,
not with the interval arithmetic Assay generates, so a shared mistake cannot pass.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.loader import build_model
from assay.semantic.model import SemanticModel

pytestmark = pytest.mark.tpch

NOW = datetime(1995, 3, 15, 10, 30)  # a Wednesday
D = "o_orderdate"
DOW = f"CAST(EXTRACT(ISODOW FROM {D}) AS INTEGER)"


def model(week_start: str, offset: int) -> SemanticModel:
    files = {
        "model": f"name: cal\nweek_start_day: {week_start}\nfiscal_month_offset: {offset}\n",
        "orders.view": (
            "table_name: orders\ndimensions:\n  o_orderkey: {primary_key: true}\n"
            "  o_orderdate: {}\nmeasures:\n  count: {aggregate_type: count}\n"
            "  total: {sql: o_totalprice, aggregate_type: sum}\n"
        ),
    }
    return build_model(files, name="cal")


def month_index(offset: int) -> str:
    year = f"CAST(EXTRACT(YEAR FROM {D}) AS INTEGER)"
    month = f"CAST(EXTRACT(MONTH FROM {D}) AS INTEGER)"
    return f"({year} * 12 + {month} - 1 + {offset})"


def hand_grain(grain: str, week_start: int, offset: int) -> str:
    m = month_index(offset)
    if grain == "week":
        return f"{D} - (({DOW} + 6 - {week_start}) % 7)"
    if grain == "day_of_week_num":
        return f"({DOW} + 6 - {week_start}) % 7 + 1"
    if grain == "fiscal_year":
        return f"CAST(FLOOR({m} / 12.0) AS INTEGER)"
    if grain == "fiscal_quarter":
        year = f"CAST(CAST(FLOOR({m} / 12.0) AS INTEGER) AS VARCHAR(8))"
        quarter = f"CAST(FLOOR(({m} % 12) / 3.0) AS INTEGER) + 1"
        return f"{year} || '-Q' || CAST({quarter} AS VARCHAR(2))"
    assert grain == "day_of_quarter"
    first = f"({m} - {m} % 3 - {offset})"
    start = f"MAKE_DATE(CAST(FLOOR({first} / 12.0) AS INTEGER), {first} % 12 + 1, 1)"
    return f"{D} - {start} + 1"


def normal(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def one(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.date()
        if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
            return Decimal(str(v)).quantize(Decimal("0.01"))
        return v

    return sorted((tuple(one(v) for v in r) for r in rows), key=repr)


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    return normal([tuple(r.values()) for r in engine.execute(sql).to_pylist()])


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest, tpch_engine: DuckDBEngine) -> Engine:
    if request.param == "duckdb":
        return tpch_engine
    return request.getfixturevalue("tpch_postgres")  # type: ignore[no-any-return]


CASES = [
    ("week", "Monday", 0, 0),
    ("week", "Sunday", 6, 0),
    ("week", "Wednesday", 2, 0),
    ("day_of_week_num", "Sunday", 6, 0),
    ("day_of_week_num", "Saturday", 5, 0),
    ("fiscal_year", "Monday", 0, 11),
    ("fiscal_year", "Monday", 0, -1),
    ("fiscal_year", "Monday", 0, 3),
    ("fiscal_quarter", "Monday", 0, 11),
    ("fiscal_quarter", "Monday", 0, -3),
    ("fiscal_quarter", "Monday", 0, 10),
    ("day_of_quarter", "Monday", 0, 0),
    ("day_of_quarter", "Monday", 0, 11),
    ("day_of_quarter", "Monday", 0, -1),
]


@pytest.mark.parametrize(("grain", "day", "week_start", "offset"), CASES)
def test_grains_equal_hand_written_sql(
    engine: Engine, grain: str, day: str, week_start: int, offset: int
) -> None:
    q = {"fields": [f"orders.{D}[{grain}]", "orders.count", "orders.total"], "table": "orders"}
    got = rows(engine, compile_query(model(day, offset), q, dialect=engine.dialect).sql)
    hand = hand_grain(grain, week_start, offset)
    want = rows(
        engine,
        f"SELECT {hand} AS g, COUNT(*) AS n, SUM(o_totalprice) AS t FROM orders GROUP BY {hand}",
    )
    assert len(got) > 3 and got == want


FILTERS = [
    # (week start, offset, filter, [start, end) by hand)
    ("Sunday", 0, "this week", date(1995, 3, 12), date(1995, 3, 19)),
    ("Monday", 0, "this week", date(1995, 3, 13), date(1995, 3, 20)),
    ("Thursday", 0, "last week", date(1995, 3, 2), date(1995, 3, 9)),
    ("Sunday", 0, "2 complete weeks ago", date(1995, 2, 26), date(1995, 3, 5)),
    ("Monday", 11, "this fiscal year", date(1995, 2, 1), date(1996, 2, 1)),
    ("Monday", 11, "last fiscal quarter", date(1994, 11, 1), date(1995, 2, 1)),
    ("Monday", -1, "FY1994", date(1994, 2, 1), date(1995, 2, 1)),
    ("Monday", 11, "FY1994-Q3", date(1993, 8, 1), date(1993, 11, 1)),
    ("Monday", 3, "this fiscal quarter", date(1995, 1, 1), date(1995, 4, 1)),
]


@pytest.mark.parametrize(("day", "offset", "text", "start", "end"), FILTERS)
def test_week_and_fiscal_filters_equal_hand_written_sql(
    engine: Engine, day: str, offset: int, text: str, start: date, end: date
) -> None:
    q = {
        "fields": ["orders.count", "orders.total"],
        "table": "orders",
        "filters": {
            f"orders.{D}": {"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": text}
        },
    }
    sql = compile_query(model(day, offset), q, dialect=engine.dialect, now=NOW).sql
    got = rows(engine, sql)
    want = rows(
        engine,
        f"SELECT COUNT(*), SUM(o_totalprice) FROM orders WHERE {D} >= DATE '{start}' "
        f"AND {D} < DATE '{end}'",
    )
    assert got == want and got[0][0] > 0


@pytest.mark.parametrize(("day", "week_start"), [("Sunday", 6), ("Friday", 4)])
def test_day_of_week_filter_by_number_counts_from_the_week_start(
    engine: Engine, day: str, week_start: int
) -> None:
    q = {
        "fields": ["orders.count"],
        "table": "orders",
        "filters": {f"orders.{D}": {"type": "date", "kind": "IS_ON_DAY_OF_WEEK", "values": ["1"]}},
    }
    got = rows(engine, compile_query(model(day, 0), q, dialect=engine.dialect).sql)
    want = rows(engine, f"SELECT COUNT(*) FROM orders WHERE {DOW} = {week_start + 1}")
    assert got == want


@pytest.mark.parametrize(("grain", "day", "week_start", "offset"), CASES)
@pytest.mark.parametrize("engine_name", ["tpch_mariadb", "tpch_spark"])
def test_engine_gives_duckdbs_rows(
    engine_name: str, tpch_engine: DuckDBEngine, grain: str, day: str, week_start: int,
    offset: int, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    engine: Engine = request.getfixturevalue(engine_name)
    q = {"fields": [f"orders.{D}[{grain}]", "orders.count", "orders.total"], "table": "orders"}
    m = model(day, offset)
    want = rows(tpch_engine, compile_query(m, q, dialect="duckdb").sql)
    assert rows(engine, compile_query(m, q, dialect=engine.dialect).sql) == want
