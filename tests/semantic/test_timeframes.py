"""Timeframes (``assay.semantic.timeframes``): each grain run on DuckDB against known moments,
rendered for every dialect Assay targets, and (when the local servers answer) run on
PostgreSQL and MariaDB too.

The reference moment is Thursday 2024-03-14 15:09:26 (ISO week 11, day 74 of the year).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, NoReturn

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from assay.semantic.compiler import DIALECTS
from assay.semantic.timeframes import GRAINS, NAMED, TRUNCATED, grain_expression, grain_type

MOMENT = "2024-03-14 15:09:26"
TS = exp.column("ts", table="t")

EXPECTED: dict[str, Any] = {
    "raw": datetime(2024, 3, 14, 15, 9, 26),
    "date": date(2024, 3, 14),
    "week": datetime(2024, 3, 11),  # the Monday
    "month": datetime(2024, 3, 1),
    "quarter": datetime(2024, 1, 1),
    "year": datetime(2024, 1, 1),
    "hour": datetime(2024, 3, 14, 15),
    "minute": datetime(2024, 3, 14, 15, 9),
    "second": datetime(2024, 3, 14, 15, 9, 26),
    "month_name": "March",
    "day_of_week_name": "Thursday",
    "month_num": 3,
    "quarter_of_year": 1,
    "day_of_month": 14,
    "day_of_year": 74,
    "day_of_week_num": 4,
    "week_of_year": 11,
    "hour_of_day": 15,
    "millisecond": datetime(2024, 3, 14, 15, 9, 26),
    "day_of_quarter": 74,
    # With no fiscal offset (the calendar these tests use), fiscal years are calendar years.
    "fiscal_year": 2024,
    "fiscal_quarter": "2024-Q1",
}


@pytest.fixture(scope="module")
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    yield con
    con.close()


def duck(db: duckdb.DuckDBPyConnection, grain: str, value: str, cast: str = "TIMESTAMP") -> Any:
    sql = grain_expression(TS, grain, "duckdb").sql(dialect="duckdb")
    row = db.execute(f"SELECT {sql} FROM (SELECT CAST(? AS {cast}) AS ts) AS t", [value]).fetchone()
    assert row is not None
    return row[0]


# ---------------------------------------------------------------- the grains


def test_grains_are_the_expected_set() -> None:
    assert set(GRAINS) == set(EXPECTED)
    assert len(GRAINS) == len(set(GRAINS))
    assert GRAINS[0] == "raw"


@pytest.mark.parametrize("grain", GRAINS)
def test_grain_type(grain: str) -> None:
    value = EXPECTED[grain]
    if isinstance(value, str):
        assert grain_type(grain) == "STRING"
    elif isinstance(value, int):
        assert grain_type(grain) == "NUMBER"
    else:
        assert grain_type(grain) == "TIMESTAMP"


def test_grain_type_of_named_and_truncated() -> None:
    assert {grain_type(g) for g in NAMED} == {"STRING"}
    assert {grain_type(g) for g in TRUNCATED} == {"TIMESTAMP"}


# ---------------------------------------------------------------- DuckDB, executed


@pytest.mark.parametrize("grain", GRAINS)
def test_grain_on_duckdb_timestamp(db: duckdb.DuckDBPyConnection, grain: str) -> None:
    assert duck(db, grain, MOMENT) == EXPECTED[grain]


@pytest.mark.parametrize("grain", GRAINS)
def test_grain_on_duckdb_date(db: duckdb.DuckDBPyConnection, grain: str) -> None:
    expected = EXPECTED[grain]
    if grain == "raw":
        expected = date(2024, 3, 14)
    elif grain in ("hour", "minute", "second", "millisecond"):
        expected = datetime(2024, 3, 14)
    elif grain == "hour_of_day":
        expected = 0
    got = duck(db, grain, "2024-03-14", cast="DATE")
    # DuckDB may answer a DATE or a midnight TIMESTAMP for truncations of a DATE.
    if isinstance(got, datetime) and not isinstance(expected, datetime):
        got = got.date()
    if isinstance(expected, datetime) and not isinstance(got, datetime):
        expected = expected.date()
    assert got == expected


DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@pytest.mark.parametrize("offset", range(7))
def test_day_of_week_is_iso(db: duckdb.DuckDBPyConnection, offset: int) -> None:
    day = date(2024, 3, 11) + timedelta(days=offset)  # Monday 11 ... Sunday 17
    assert duck(db, "day_of_week_num", day.isoformat(), cast="DATE") == offset + 1
    assert duck(db, "day_of_week_name", day.isoformat(), cast="DATE") == DAY_NAMES[offset]
    assert duck(db, "week", f"{day} 23:59:59") == datetime(2024, 3, 11)


@pytest.mark.parametrize(
    ("day", "week_start", "iso_week"),
    [
        ("2027-01-01", datetime(2026, 12, 28), 53),  # a Friday in ISO week 53 of 2026
        ("2024-12-30", datetime(2024, 12, 30), 1),  # a Monday in ISO week 1 of 2025
        ("2025-12-31", datetime(2025, 12, 29), 1),
        ("2021-01-03", datetime(2020, 12, 28), 53),  # a Sunday
    ],
)
def test_weeks_across_years(
    db: duckdb.DuckDBPyConnection, day: str, week_start: datetime, iso_week: int
) -> None:
    assert duck(db, "week", day, cast="DATE") == week_start
    assert duck(db, "week_of_year", day, cast="DATE") == iso_week


@pytest.mark.parametrize(
    ("moment", "grain", "expected"),
    [
        ("2024-12-31 23:59:59", "quarter", datetime(2024, 10, 1)),
        ("2024-12-31 23:59:59", "day_of_year", 366),
        ("2024-12-31 23:59:59", "quarter_of_year", 4),
        ("2024-12-31 23:59:59", "month_name", "December"),
        ("2024-07-01 00:00:00", "quarter", datetime(2024, 7, 1)),
        ("2024-02-29 00:00:00", "day_of_month", 29),
        ("2024-01-01 00:00:00", "hour_of_day", 0),
    ],
)
def test_grain_edges_on_duckdb(
    db: duckdb.DuckDBPyConnection, moment: str, grain: str, expected: Any
) -> None:
    assert duck(db, grain, moment) == expected


def test_grain_expression_copies_the_target() -> None:
    target = exp.column("ts", table="t")
    out = grain_expression(target, "raw", "duckdb")
    assert out is not target
    assert out == target
    wrapped = grain_expression(target, "month", "duckdb")
    assert target.parent is None
    assert all(c is not target for c in wrapped.find_all(exp.Column))


# ---------------------------------------------------------------- every dialect, rendered


def test_assay_dialects() -> None:
    assert set(DIALECTS) == {
        "duckdb",
        "postgres",
        "mysql",
        "snowflake",
        "bigquery",
        "trino",
        "spark",
    }


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("grain", GRAINS)
def test_every_grain_renders_and_reparses(grain: str, dialect: str) -> None:
    sql = grain_expression(TS, grain, dialect).sql(dialect=dialect)
    assert "t.ts" in sql
    # What we render, the dialect's own parser reads back.
    sqlglot.parse_one(f"SELECT {sql} FROM t", read=dialect)


_NOT_IN_POSTGRES = (
    "DAY_OF_MONTH", "DAYOFMONTH", "DAY_OF_YEAR", "DAYOFYEAR", "DAYOFWEEK", "DAY_OF_WEEK",
    "DAYOFWEEK_ISO", "ISODOW(", "WEEK_OF_YEAR", "WEEKOFYEAR", "QUARTER(", "MONTH(", "HOUR(",
    "STRFTIME", "DATE_FORMAT",
)  # fmt: skip


@pytest.mark.parametrize("grain", GRAINS)
def test_postgres_renders_use_postgres_functions(grain: str) -> None:
    sql = grain_expression(TS, grain, "postgres").sql(dialect="postgres").upper()
    for name in _NOT_IN_POSTGRES:
        assert name not in sql, f"{grain}: {sql}"
    if grain_type(grain) == "NUMBER" and grain not in ("day_of_quarter", "fiscal_year"):
        assert re.fullmatch(r"EXTRACT\((ISODOW|DOY|DAY|MONTH|QUARTER|WEEK|HOUR) FROM T\.TS\)", sql)


@pytest.mark.parametrize(
    ("grain", "sql"),
    [
        ("month_num", "EXTRACT(MONTH FROM t.ts)"),
        ("day_of_week_num", "EXTRACT(ISODOW FROM t.ts)"),
        ("day_of_year", "EXTRACT(DOY FROM t.ts)"),
        ("week_of_year", "EXTRACT(WEEK FROM t.ts)"),
        ("week", "DATE_TRUNC('WEEK', t.ts)"),
        ("date", "CAST(t.ts AS DATE)"),
        ("month_name", "TO_CHAR(t.ts, 'TMMonth')"),
        ("day_of_week_name", "TO_CHAR(t.ts, 'TMDay')"),
    ],
)
def test_postgres_exact_renders(grain: str, sql: str) -> None:
    assert grain_expression(TS, grain, "postgres").sql(dialect="postgres") == sql


@pytest.mark.parametrize(
    ("grain", "sql"),
    [
        ("day_of_week_num", "WEEKDAY(t.ts) + 1"),
        ("week_of_year", "WEEK(t.ts, 3)"),
        ("month_name", "DATE_FORMAT(t.ts, '%M')"),
        ("day_of_week_name", "DATE_FORMAT(t.ts, '%W')"),
    ],
)
def test_mysql_exact_renders(grain: str, sql: str) -> None:
    assert grain_expression(TS, grain, "mysql").sql(dialect="mysql") == sql


@pytest.mark.parametrize("grain", GRAINS)
def test_mysql_renders_have_no_iso_dayofweek(grain: str) -> None:
    sql = grain_expression(TS, grain, "mysql").sql(dialect="mysql").upper()
    assert "DAYOFWEEK_ISO" not in sql
    assert "ISODOW" not in sql


def _sunday_based_day_of_week(dialect: str, sunday_one: int) -> int:
    """Evaluate the dialect's day_of_week_num render on DuckDB, with the dialect's own
    DAYOFWEEK (Sunday = 1 ... Saturday = 7, as in Spark and BigQuery) replaced by its value."""
    sql = grain_expression(TS, "day_of_week_num", dialect).sql(dialect=dialect)
    inner = {"spark": "DAYOFWEEK(t.ts)", "bigquery": "EXTRACT(DAYOFWEEK FROM t.ts)"}[dialect]
    assert inner in sql, sql
    con = duckdb.connect()
    try:
        row = con.execute(f"SELECT {sql.replace(inner, str(sunday_one))}").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("iso", range(1, 8))
def test_bigquery_day_of_week_num_is_iso(iso: int) -> None:
    sunday_one = iso % 7 + 1  # Monday (ISO 1) is BigQuery's 2, Sunday (ISO 7) its 1
    assert _sunday_based_day_of_week("bigquery", sunday_one) == iso


@pytest.mark.parametrize("iso", range(1, 8))
def test_spark_day_of_week_num_is_iso(iso: int) -> None:
    """Spark renders WEEKDAY(x) + 1; Spark's WEEKDAY is Monday 0 ... Sunday 6."""
    sql = grain_expression(TS, "day_of_week_num", "spark").sql(dialect="spark")
    assert "WEEKDAY(t.ts)" in sql, sql
    con = duckdb.connect()
    try:
        row = con.execute(f"SELECT {sql.replace('WEEKDAY(t.ts)', str(iso - 1))}").fetchone()
    finally:
        con.close()
    assert row is not None and int(row[0]) == iso


def test_bigquery_week_starts_on_monday() -> None:
    sql = grain_expression(TS, "week", "bigquery").sql(dialect="bigquery").upper()
    assert "ISOWEEK" in sql or "WEEK(MONDAY)" in sql


def test_snowflake_day_of_week_name_has_no_strftime_code() -> None:
    sql = grain_expression(TS, "day_of_week_name", "snowflake").sql(dialect="snowflake")
    assert "%" not in sql


@pytest.mark.parametrize(
    ("dialect", "grain", "sql"),
    [
        ("snowflake", "day_of_week_num", "DAYOFWEEKISO(t.ts)"),
        ("snowflake", "week_of_year", "WEEKISO(t.ts)"),
        ("snowflake", "month_name", "TO_CHAR(t.ts, 'mmmm')"),
        ("trino", "day_of_week_num", "DAY_OF_WEEK(t.ts)"),
        ("trino", "week_of_year", "WEEK_OF_YEAR(t.ts)"),
        ("trino", "week", "DATE_TRUNC('WEEK', t.ts)"),
        ("bigquery", "week_of_year", "EXTRACT(ISOWEEK FROM t.ts)"),
        ("spark", "day_of_week_name", "DATE_FORMAT(t.ts, 'EEEE')"),
        ("spark", "week_of_year", "WEEKOFYEAR(t.ts)"),
    ],
)
def test_other_dialects_exact_renders(dialect: str, grain: str, sql: str) -> None:
    assert grain_expression(TS, grain, dialect).sql(dialect=dialect) == sql


# ---------------------------------------------------------------- live PostgreSQL / MariaDB

_LIVE = {
    "postgres": (
        "psql",
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-X", "-A", "-t", "-F", "\t"],
        ["-c"],
        "TIMESTAMP",
    ),
    "mysql": (
        "mysql",
        ["mysql", "-h", "127.0.0.1", "-u", "root", "--connect-timeout=5", "-N", "-B", "test"],
        ["-e"],
        "DATETIME",
    ),
}


def _unavailable(reason: str) -> NoReturn:
    """Skip with the reason on a developer's machine; under CI the database must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


def _live_query(dialect: str, sql: str) -> list[str]:
    client, cmd, flag, _ = _LIVE[dialect]
    if shutil.which(client) is None:
        _unavailable(f"{client} is not installed")
    env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
    try:
        probe = subprocess.run(
            [*cmd, *flag, "SELECT 1"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"no {dialect} server answered at 127.0.0.1")
    if probe.returncode != 0:
        _unavailable(f"no {dialect} server: {probe.stderr.strip()[:200]}")
    out = subprocess.run(
        [*cmd, *flag, sql], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert out.returncode == 0, f"{dialect} refused:\n{sql}\n{out.stderr}"
    return out.stdout.rstrip("\n").split("\t")


def _as_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ").removesuffix(" 00:00:00")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_every_grain_runs_on_the_live_server(dialect: str) -> None:
    cast = _LIVE[dialect][3]
    columns = ", ".join(grain_expression(TS, g, dialect).sql(dialect=dialect) for g in GRAINS)
    sql = f"SELECT {columns} FROM (SELECT CAST('{MOMENT}' AS {cast}) AS ts) AS t"
    got = _live_query(dialect, sql)
    assert len(got) == len(GRAINS)
    for grain, text in zip(GRAINS, got, strict=True):
        # MariaDB shows a DATETIME with microseconds once they were computed on
        shown = text.removesuffix(".000000").removesuffix(" 00:00:00")
        assert shown == _as_text(EXPECTED[grain]), grain
