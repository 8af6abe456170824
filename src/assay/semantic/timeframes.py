"""Timeframes (``orders.o_orderdate[month]``): the SQL and the type of each grain.

sqlglot's typed date functions render well for most dialects; where it emits a function the
target lacks (PostgreSQL has no DAY_OF_MONTH, MySQL no DAYOFWEEK_ISO) the grain is built with
the construct that dialect does have. Day of week numbers count from the calendar's first day
of the week (Monday 1 ... Sunday 7 by default, ISO); ``week_of_year`` stays ISO whatever the
week start, as in Looker (Omni's docs name only the week grain and day-of-week number).
Fiscal grains read the date moved ahead by the fiscal offset in months (see ``calendar``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sqlglot import exp

from assay.semantic.calendar import ISO, Calendar

TRUNCATED: Final = {
    "date": "DAY", "week": "WEEK", "month": "MONTH", "quarter": "QUARTER", "year": "YEAR",
    "hour": "HOUR", "minute": "MINUTE", "second": "SECOND", "millisecond": "MILLISECOND",
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
    "year_num": (exp.Year, "YEAR"),  # not a grain of its own: the fiscal year's number
}
#: Grains of the fiscal calendar: they exist only in a model with a ``fiscal_month_offset``.
FISCAL: Final = ("fiscal_year", "fiscal_quarter")
GRAINS: Final = (
    "raw", *TRUNCATED, *NAMED, *(p for p in _PARTS if p != "year_num"), "day_of_quarter", *FISCAL
)  # fmt: skip
_CLOCK: Final = ("hour", "minute", "second", "millisecond")


def grain_type(grain: str) -> str:
    """The Omni ``data_type`` of a grain's values."""
    if grain in NAMED or grain == "fiscal_quarter":
        return "STRING"
    if grain in _PARTS or grain in ("day_of_quarter", "fiscal_year"):
        return "NUMBER"
    return "TIMESTAMP"


def grain_expression(
    target: exp.Expr, grain: str, dialect: str, calendar: Calendar = ISO
) -> exp.Expr:
    """``target`` bucketed to ``grain`` for ``dialect`` (``target`` is copied)."""
    t = target.copy()
    if grain == "raw":
        return t
    if grain == "date":
        return exp.Cast(this=t, to=exp.DataType(this=exp.DataType.Type.DATE))
    if grain == "millisecond" and dialect == "mysql":  # TIMESTAMPDIFF has no MILLISECOND
        micros = exp.Mod(
            this=exp.Anonymous(this="MICROSECOND", expressions=[t.copy()]),
            expression=exp.Literal.number(1000),
        )
        return exp.DateSub(this=t, expression=micros, unit=exp.var("MICROSECOND"))
    if grain in _CLOCK:
        return exp.TimestampTrunc(this=t, unit=exp.var(TRUNCATED[grain]))
    if grain == "week" and calendar.week_start:
        # The week of the day moved back to a Monday, moved forward again: its first day.
        back = _days(t, -calendar.week_start)
        return _days(grain_expression(back, "week", dialect), calendar.week_start)
    if grain == "week" and dialect == "bigquery":  # BigQuery's WEEK starts on Sunday
        return exp.DateTrunc(this=t, unit=exp.var("ISOWEEK"))  # type: ignore[no-untyped-call]
    if grain == "day_of_week_num" and calendar.week_start:
        # ISO 1 ... 7 to 1 ... 7 from the week's first day: (iso + 6 - start) % 7 + 1
        iso = grain_expression(t, "day_of_week_num", dialect)
        ahead = 6 - calendar.week_start
        shifted = exp.Add(this=iso, expression=exp.Literal.number(ahead)) if ahead else iso
        counted = exp.Mod(this=exp.Paren(this=shifted), expression=exp.Literal.number(7))
        return exp.Add(this=counted, expression=exp.Literal.number(1))
    if grain in ("fiscal_year", "fiscal_quarter", "day_of_quarter"):
        return _fiscal(t, grain, dialect, calendar.fiscal_month_offset)
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


def _days(t: exp.Expr, n: int) -> exp.Expr:
    return exp.DateAdd(this=t, expression=exp.Literal.number(n), unit=exp.var("DAY"))


def _months(t: exp.Expr, n: int) -> exp.Expr:
    if not n:
        return t
    return exp.DateAdd(this=t, expression=exp.Literal.number(n), unit=exp.var("MONTH"))


def _fiscal(t: exp.Expr, grain: str, dialect: str, offset: int) -> exp.Expr:
    """Fiscal grains: the year and quarter of the date moved ahead by ``offset`` months (a
    month moves whole, so the clamping of a 31st changes no year or quarter), and the day of
    the fiscal quarter counted in real days from its first day."""
    ahead = _months(t, offset)
    if grain == "fiscal_year":
        return grain_expression(ahead, "year_num", dialect)
    if grain == "fiscal_quarter":
        text = exp.DataType.build("text")
        year = exp.Cast(this=grain_expression(ahead, "year_num", dialect), to=text)
        quarter = exp.Cast(this=grain_expression(ahead.copy(), "quarter_of_year", dialect), to=text)
        return exp.Concat(expressions=[year, exp.Literal.string("-Q"), quarter])
    start = _months(grain_expression(ahead, "quarter", dialect), -offset)
    day = exp.DataType.build("date")
    between = exp.DateDiff(
        this=exp.Cast(this=t.copy(), to=day), expression=exp.Cast(this=start, to=day),
        unit=exp.var("DAY"),
    )  # fmt: skip
    return exp.Add(this=between, expression=exp.Literal.number(1))
