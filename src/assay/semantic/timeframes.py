"""Timeframes (``orders.o_orderdate[month]``): the SQL and the type of each grain.

sqlglot's typed date functions render well for most dialects; where it emits a function the
target lacks (PostgreSQL has no DAY_OF_MONTH, MySQL no DAYOFWEEK_ISO) the grain is built with
the construct that dialect does have. Day of week numbers are ISO: Monday 1 ... Sunday 7.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sqlglot import exp

TRUNCATED: Final = {
    "date": "DAY", "week": "WEEK", "month": "MONTH", "quarter": "QUARTER", "year": "YEAR",
    "hour": "HOUR", "minute": "MINUTE", "second": "SECOND",
}  # fmt: skip
NAMED: Final = {"month_name": "%B", "day_of_week_name": "%A"}
_PARTS: Final[dict[str, tuple[type[exp.Func], str]]] = {
    # grain: (sqlglot typed function, PostgreSQL EXTRACT unit)
    "month_num": (exp.Month, "MONTH"),
    "quarter_of_year": (exp.Quarter, "QUARTER"),
    "day_of_month": (exp.DayOfMonth, "DAY"),
    "day_of_year": (exp.DayOfYear, "DOY"),
    "day_of_week_num": (exp.DayOfWeekIso, "ISODOW"),
    "week_of_year": (exp.WeekOfYear, "WEEK"),
    "hour_of_day": (exp.Hour, "HOUR"),
}
GRAINS: Final = ("raw", *TRUNCATED, *NAMED, *_PARTS)


def grain_type(grain: str) -> str:
    """The Omni ``data_type`` of a grain's values."""
    if grain in NAMED:
        return "STRING"
    if grain in _PARTS:
        return "NUMBER"
    return "TIMESTAMP"


def grain_expression(target: exp.Expr, grain: str, dialect: str) -> exp.Expr:
    """``target`` bucketed to ``grain`` for ``dialect`` (``target`` is copied)."""
    t = target.copy()
    if grain == "raw":
        return t
    if grain == "date":
        return exp.Cast(this=t, to=exp.DataType(this=exp.DataType.Type.DATE))
    if grain in ("hour", "minute", "second"):
        return exp.TimestampTrunc(this=t, unit=exp.var(TRUNCATED[grain]))
    if grain == "week" and dialect == "bigquery":  # BigQuery's WEEK starts on Sunday
        return exp.DateTrunc(this=t, unit=exp.var("ISOWEEK"))  # type: ignore[no-untyped-call]
    if grain in TRUNCATED:
        return exp.DateTrunc(this=t, unit=exp.var(TRUNCATED[grain]))  # type: ignore[no-untyped-call]
    if grain == "day_of_week_name" and dialect == "snowflake":  # TO_CHAR has no full day name
        names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
        ifs = [
            exp.If(this=exp.Literal.number(i), true=exp.Literal.string(n))
            for i, n in enumerate(names, start=1)
        ]
        return exp.Case(this=exp.DayOfWeekIso(this=t), ifs=ifs)
    if grain in NAMED:
        return exp.TimeToStr(this=t, format=exp.Literal.string(NAMED[grain]))
    func, pg_unit = _PARTS[grain]
    override = _OVERRIDES.get((dialect, grain))
    if override is not None:
        return override(t)
    if dialect in ("postgres", "redshift"):
        return exp.Extract(this=exp.var(pg_unit), expression=t)
    return func(this=t)


_OVERRIDES: dict[tuple[str, str], Callable[[exp.Expr], exp.Expr]] = {
    ("mysql", "day_of_week_num"): lambda t: exp.Add(
        this=exp.Anonymous(this="WEEKDAY", expressions=[t]), expression=exp.Literal.number(1)
    ),
    ("mysql", "week_of_year"): lambda t: exp.Anonymous(
        this="WEEK", expressions=[t, exp.Literal.number(3)]
    ),
    # Spark's DAYOFWEEK counts from Sunday; WEEKDAY is Monday 0 ... Sunday 6.
    ("spark", "day_of_week_num"): lambda t: exp.Add(
        this=exp.Anonymous(this="WEEKDAY", expressions=[t]), expression=exp.Literal.number(1)
    ),
}
