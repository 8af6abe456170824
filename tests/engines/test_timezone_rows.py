"""Time zones on real databases: a model whose query zone is America/New_York converts its
timestamps from UTC before grains, filters and sorts, on DuckDB and PostgreSQL, and the rows
equal what Python's zoneinfo says, row for row. TPC-H has only DATE columns, so a derived
table (written in each database's own SQL) puts each order at an hour of its day from its key:
hours 0-4 UTC are the evening before in New York, so date grains move across midnight, and
the range around 2 April 1995 crosses the start of daylight saving time (UTC-5 to UTC-4).
MariaDB refuses the conversion by name: its CONVERT_TZ is NULL without time zone tables.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.errors import InvalidQuery, ModelInvalid
from assay.semantic.compiler import compile_query
from assay.semantic.loader import build_model
from assay.semantic.model import SemanticModel

pytestmark = pytest.mark.tpch

NEW_YORK = ZoneInfo("America/New_York")
Zoned = tuple[str, Engine]  # a dialect and a database speaking it
Stamps = list[tuple[datetime, datetime]]  # each order's time in UTC and in New York
# Each order at (key % 24) hours past midnight UTC of its order date, in each dialect's SQL.
EVENTS_SQL = {
    "duckdb": "SELECT o_orderkey, CAST(o_orderdate AS TIMESTAMP) "
    "+ TO_HOURS(CAST(o_orderkey % 24 AS BIGINT)) AS ordered_at FROM orders",
    "postgres": "SELECT o_orderkey, o_orderdate "
    "+ MAKE_INTERVAL(hours => CAST(o_orderkey % 24 AS INTEGER)) AS ordered_at FROM orders",
}
EVENTS_VIEW = """\
sql: {sql}
dimensions:
  o_orderkey: {{primary_key: true}}
  ordered_at: {{timeframes: [raw, date, hour, week], convert_tz: true}}
  ordered_at_utc: {{sql: ordered_at, timeframes: [raw, date], convert_tz: false}}
measures:
  count: {{aggregate_type: count}}
"""
ORDERS_VIEW = """\
table_name: orders
dimensions:
  o_orderkey: {primary_key: true}
  o_orderdate: {}
measures:
  count: {aggregate_type: count}
"""
DST_WEEK = {
    "type": "date",
    "kind": "BETWEEN",
    "left_side": "1995-03-30",
    "right_side": "1995-04-05",
}


def zoned_model(dialect: str, engine: Engine) -> SemanticModel:
    files = {
        "model": f"name: tz\ndialect: {dialect}\n"
        "timezone: {database: UTC, query: America/New_York}\n",
        "events.view": EVENTS_VIEW.format(sql=EVENTS_SQL[dialect]),
        "orders.view": ORDERS_VIEW,
    }
    return build_model(files, name="tz", catalog=engine.catalog())


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest, tpch_engine: DuckDBEngine) -> tuple[str, Engine]:
    if request.param == "duckdb":
        return "duckdb", tpch_engine
    return "postgres", request.getfixturevalue("tpch_postgres")


@pytest.fixture
def stamps(engine: tuple[str, Engine]) -> list[tuple[datetime, datetime]]:
    """Every order's timestamp in UTC and as New York wall time, computed by zoneinfo."""
    table = engine[1].execute("SELECT o_orderkey, o_orderdate FROM orders").to_pylist()
    out = []
    for row in table:
        day = row["o_orderdate"]
        utc = datetime(day.year, day.month, day.day) + timedelta(hours=row["o_orderkey"] % 24)
        local = utc.replace(tzinfo=UTC).astimezone(NEW_YORK).replace(tzinfo=None)
        out.append((utc, local))
    return out


def run(engine: tuple[str, Engine], query: dict[str, Any], **kw: Any) -> list[tuple[Any, ...]]:
    dialect, db = engine
    model = zoned_model(dialect, db)
    sql = compile_query(model, {"limit": None, **query}, **kw).sql
    return [tuple(_plain(v) for v in r.values()) for r in db.execute(sql).to_pylist()]


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.replace(tzinfo=None)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day)
    return v


def in_dst_week(t: datetime) -> bool:
    return datetime(1995, 3, 30) <= t < datetime(1995, 4, 5)


def test_date_grain_moves_late_utc_hours_to_the_day_before(engine: Zoned, stamps: Stamps) -> None:
    got = run(engine, {"table": "events", "fields": ["events.ordered_at[date]", "events.count"],
                       "filters": {"events.ordered_at": DST_WEEK},
                       "sorts": [{"column_name": "events.ordered_at[date]"}]})  # fmt: skip
    want = Counter(
        datetime.combine(local.date(), datetime.min.time())
        for _, local in stamps
        if in_dst_week(local)
    )
    assert got == sorted(want.items())
    # not the UTC dates: a shift that did nothing would fail here
    utc = Counter(
        datetime.combine(u.date(), datetime.min.time()) for u, _ in stamps if in_dst_week(u)
    )
    assert got != sorted(utc.items())


def test_hour_grain_and_its_sort_cross_midnight_and_daylight_saving(
    engine: Zoned, stamps: Stamps
) -> None:
    window = {"type": "date", "kind": "BETWEEN", "left_side": "1995-04-01 22:00",
              "right_side": "1995-04-02 06:00"}  # fmt: skip
    got = run(engine, {"table": "events", "fields": ["events.ordered_at[hour]", "events.count"],
                       "filters": {"events.ordered_at": window},
                       "sorts": [{"column_name": "events.ordered_at[hour]",
                                  "sort_descending": True}]})  # fmt: skip
    lo, hi = datetime(1995, 4, 1, 22), datetime(1995, 4, 2, 6)
    want = Counter(local.replace(minute=0) for _, local in stamps if lo <= local < hi)
    assert got == sorted(want.items(), reverse=True)
    # 2:00 does not exist in New York on 2 April 1995: clocks went from 1:59 to 3:00
    assert datetime(1995, 4, 2, 2) not in dict(got)
    assert datetime(1995, 4, 2, 3) in dict(got)


def test_week_grain_counts_each_order_in_its_new_york_week(engine: Zoned, stamps: Stamps) -> None:
    got = run(engine, {"table": "events", "fields": ["events.ordered_at[week]", "events.count"]})
    want = Counter(
        datetime.combine(local.date() - timedelta(days=local.weekday()), datetime.min.time())
        for _, local in stamps
    )
    assert sorted(got) == sorted(want.items())


def test_relative_filter_is_a_new_york_day(engine: Zoned, stamps: Stamps) -> None:
    """``now`` is the query zone's wall time: 1:00 on 3 April in New York (5:00 UTC), so
    "yesterday" is New York's 2 April, of New York's hours."""
    yesterday = {"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "yesterday"}
    got = run(engine, {"table": "events", "fields": ["events.count"],
                       "filters": {"events.ordered_at": yesterday}},
              now=datetime(1995, 4, 3, 1, 0))  # fmt: skip
    want = sum(1 for _, local in stamps if local.date() == date(1995, 4, 2))
    assert got == [(want,)]


def test_convert_tz_false_and_date_columns_keep_the_databases_days(
    engine: Zoned, stamps: Stamps
) -> None:
    got = run(engine, {"table": "events", "fields": ["events.ordered_at_utc[date]", "events.count"],
                       "filters": {"events.ordered_at_utc": DST_WEEK}})  # fmt: skip
    want = Counter(
        datetime.combine(u.date(), datetime.min.time()) for u, _ in stamps if in_dst_week(u)
    )
    assert sorted(got) == sorted(want.items())
    # orders.o_orderdate is a DATE (the catalog says so): never converted
    dialect, db = engine
    sql = compile_query(zoned_model(dialect, db), {"table": "orders",
                        "fields": ["orders.o_orderdate[date]", "orders.count"]}).sql  # fmt: skip
    assert "TIME ZONE" not in sql
    dates = run(engine, {"table": "orders", "fields": ["orders.o_orderdate[date]", "orders.count"],
                         "filters": {"orders.o_orderdate": DST_WEEK}})  # fmt: skip
    assert sorted(dates) == sorted(want.items())  # each order's UTC hour is on its order date


def test_mariadb_refuses_the_conversion_by_name(
    tpch_mariadb: Engine, tpch_engine: DuckDBEngine
) -> None:
    """CONVERT_TZ with a named zone is NULL on a server without time zone tables (this one
    has none): Assay refuses rather than return NULL dates, at load and at compile."""
    probe = "SELECT CONVERT_TZ('2024-01-01 00:00:00', 'UTC', 'America/New_York') AS v"
    if tpch_mariadb.execute(probe).to_pylist()[0]["v"] is not None:
        pytest.skip("this MariaDB has time zone tables loaded")
    model = zoned_model("duckdb", tpch_engine)
    with pytest.raises(InvalidQuery, match="CONVERT_TZ returns NULL"):
        compile_query(model, {"table": "events", "fields": ["events.ordered_at[date]"]},
                      dialect="mysql")  # fmt: skip
    files = {
        "model": "dialect: mysql\ntimezone: {query: America/New_York}\n",
        "events.view": EVENTS_VIEW.format(sql="SELECT 1 AS o_orderkey, NOW() AS ordered_at"),
    }
    with pytest.raises(ModelInvalid, match=r"converted: events\.ordered_at"):
        build_model(files, name="tz")
    # without conversion (convert_tz: false everywhere) MariaDB runs it, in the query zone's clock
    files["events.view"] = files["events.view"].replace("convert_tz: true", "convert_tz: false")
    sql = compile_query(build_model(files, name="tz"), {"table": "events",
                        "fields": ["events.ordered_at[date]", "events.count"]}).sql  # fmt: skip
    assert "CONVERT_TZ" not in sql
    assert tpch_mariadb.execute(sql).to_pylist()
