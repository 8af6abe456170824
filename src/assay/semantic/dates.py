"""Omni's date filter grammar, resolved to half-open spans ``[start, end)`` at a given ``now``.

Relative expressions ("last quarter", "30 days ago") are resolved in Python against ``now`` so
the SQL holds plain literals: the same text on every dialect, and testable with a fixed clock.
Weeks start on the calendar's first day (Monday unless the model says otherwise); fiscal
years and quarters follow its ``fiscal_month_offset`` (none: they are calendar years).
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ParamSpec, TypeVar

from assay.semantic.calendar import ISO, Calendar

UNITS = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")
_UNIT_RE = r"(second|minute|hour|day|week|month|quarter|year|fiscal year|fiscal quarter)s?"
_ABSOLUTE = re.compile(  # matched against lowercased text, hence the 't' separator
    r"^(\d{4})(?:[-/](\d{1,2})(?:[-/](\d{1,2})"
    r"(?:[ t](\d{1,2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?$"
)
_QUARTER = re.compile(r"^(\d{4})[ -]?q([1-4])$")
_FISCAL_YEAR = re.compile(r"^fy ?(\d{4})(?:[ -]?q([1-4]))?$")
_AGO = re.compile(rf"^(\d+) (complete )?{_UNIT_RE} (ago|from now)$")
_THIS = re.compile(rf"^(this|last|next|current|previous) {_UNIT_RE}$")
_DURATION = re.compile(rf"^(\d+) (complete )?{_UNIT_RE}$")


class DateGrammarError(ValueError):
    """A date expression Assay cannot read (the message names it)."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _in_range(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Text that reads but lands outside what ``datetime`` holds ("9999-12-31" ends in year
    10000, "3000 years ago", a 5000-digit count) is refused as ``DateGrammarError`` like any
    other unreadable date, never as the ValueError or OverflowError of the arithmetic."""

    @functools.wraps(func)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except DateGrammarError:
            raise
        except (ValueError, OverflowError) as exc:
            text = ", ".join(repr(a) for a in args if isinstance(a, str))
            raise DateGrammarError(f"the date {text} is out of range: {exc}") from exc

    return guarded


@dataclass(frozen=True, slots=True)
class Span:
    start: datetime
    end: datetime
    has_time: bool = False


def _unit(word: str) -> str:
    """``'fiscal quarters'`` -> ``'fiscal_quarter'``, ``'days'`` -> ``'day'``."""
    return word.removesuffix("s").replace(" ", "_")


def truncate(moment: datetime, unit: str, calendar: Calendar = ISO) -> datetime:
    """Start of the ``unit`` containing ``moment`` (weeks and fiscal periods as ``calendar``
    counts them)."""
    if unit in ("fiscal_year", "fiscal_quarter"):
        # The period of the month moved ahead by the offset, moved back: whole months move
        # exactly from a first of the month.
        offset = calendar.fiscal_month_offset
        ahead = shift(truncate(moment, "month"), "month", offset)
        return shift(truncate(ahead, unit.removeprefix("fiscal_")), "month", -offset)
    if unit == "second":
        return moment.replace(microsecond=0)
    if unit == "minute":
        return moment.replace(second=0, microsecond=0)
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=(day.weekday() - calendar.week_start) % 7)
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def shift(moment: datetime, unit: str, n: int) -> datetime:
    """``moment`` moved by ``n`` units (months clamp to the month's last day)."""
    unit = unit.removeprefix("fiscal_")  # a fiscal year is twelve months long, as any other
    if unit in ("month", "quarter", "year"):
        months = n * {"month": 1, "quarter": 3, "year": 12}[unit]
        total = moment.year * 12 + moment.month - 1 + months
        year, month = divmod(total, 12)
        last = calendar.monthrange(year, month + 1)[1]
        return moment.replace(year=year, month=month + 1, day=min(moment.day, last))
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}[unit]
    return moment + timedelta(seconds=seconds * n)


@_in_range
def parse_span(text: str, now: datetime, calendar: Calendar = ISO) -> Span:
    """The span an expression names: ``2024-03`` is March 2024, ``last quarter`` the previous
    quarter, ``30 days ago`` the day thirty days back, ``FY2025`` the fiscal year 2025 (the
    dates whose year, moved ahead by the fiscal offset, is 2025)."""
    t = " ".join(str(text).strip().lower().split())
    if m := _ABSOLUTE.match(t):
        *parts, fraction = m.groups()
        year, month, day, hour, minute, second = (int(p) if p else None for p in parts)
        unit = ("year", "month", "day", "hour", "minute", "second")[
            sum(p is not None for p in parts) - 1
        ]
        micro = int(fraction.ljust(6, "0")) if fraction else 0
        try:
            start = datetime(
                year or 0,  # year 0, month 0 and day 0 are refused by datetime, as they should be
                1 if month is None else month,
                1 if day is None else day,
                hour or 0,
                minute or 0,
                second or 0,
                micro,
            )
        except ValueError as exc:
            raise DateGrammarError(f"invalid date {text!r}: {exc}") from exc
        return Span(start, shift(start, unit, 1), has_time=hour is not None)
    if m := _QUARTER.match(t):
        start = datetime(int(m.group(1)), (int(m.group(2)) - 1) * 3 + 1, 1)
        return Span(start, shift(start, "quarter", 1))
    if m := _FISCAL_YEAR.match(t):
        unit = "quarter" if m.group(2) else "year"
        month = (int(m.group(2)) - 1) * 3 + 1 if m.group(2) else 1
        start = shift(datetime(int(m.group(1)), month, 1), "month", -calendar.fiscal_month_offset)
        return Span(start, shift(start, unit, 1))
    if t in ("today", "yesterday", "tomorrow"):
        offset = {"today": 0, "yesterday": -1, "tomorrow": 1}[t]
        start = truncate(now, "day") + timedelta(days=offset)
        return Span(start, start + timedelta(days=1))
    if t == "now":
        moment = truncate(now, "second")
        return Span(moment, moment + timedelta(seconds=1), has_time=True)
    if m := _THIS.match(t):
        unit = _unit(m.group(2))
        offset = {"this": 0, "current": 0, "last": -1, "previous": -1, "next": 1}[m.group(1)]
        start = shift(truncate(now, unit, calendar), unit, offset)
        return Span(start, shift(start, unit, 1), has_time=unit in ("hour", "minute", "second"))
    if m := _AGO.match(t):
        n, complete, word, direction = m.groups()
        unit = _unit(word)
        sign = -1 if direction == "ago" else 1
        fine = unit if complete or unit in ("hour", "minute", "second") else "day"
        start = truncate(shift(now, unit, sign * int(n)), fine, calendar)
        return Span(start, shift(start, fine, 1), has_time=fine in ("hour", "minute", "second"))
    raise DateGrammarError(
        f"cannot read the date {text!r}: expected e.g. '2024-03-01', '2024-03', '2024 Q1', "
        "'FY2024', 'FY2024-Q1', 'today', 'last month', 'this fiscal year', '30 days ago'"
    )


@_in_range
def parse_duration(text: str) -> tuple[int, str]:
    """``'30 days'`` -> ``(30, 'day')``."""
    t = " ".join(str(text).strip().lower().split())
    if m := _DURATION.match(t):
        # a fiscal quarter lasts as long as any other: a duration has no calendar
        return int(m.group(1)), _unit(m.group(3)).removeprefix("fiscal_")
    raise DateGrammarError(
        f"cannot read the duration {text!r}: expected e.g. '30 days', '12 months'"
    )


@_in_range
def span_after(start: Span, duration: str) -> Span:
    n, unit = parse_duration(duration)
    return Span(start.start, shift(start.start, unit, n), has_time=start.has_time)


@_in_range
def interval_span(left: str, duration: str, now: datetime, calendar: Calendar = ISO) -> Span:
    """``left`` plus ``duration``: Omni's TIME_FOR_INTERVAL_DURATION.

    "last N units" is written ``N units ago`` + ``N units``: that window ends now (at the
    current day, or hour), never short of it because a month end was clamped on the way back
    (on 31 March, one month ago is 29 February, and a month after that is 29 March).
    """
    start = parse_span(left, now, calendar)
    n, unit = parse_duration(duration)
    t = " ".join(str(left).strip().lower().split())
    m = _AGO.match(t)
    if (
        m
        and m.group(4) == "ago"
        and not m.group(2)
        and _unit(m.group(3)).removeprefix("fiscal_") == unit
        and int(m.group(1)) == n
    ):
        fine = unit if unit in ("hour", "minute", "second") else "day"
        return Span(start.start, truncate(now, fine), has_time=start.has_time)
    return span_after(start, duration)


def as_date_or_datetime(moment: datetime) -> date | datetime:
    """A plain date when there is no time of day, so DATE columns compare without casts."""
    if moment.time() == datetime.min.time():
        return moment.date()
    return moment
